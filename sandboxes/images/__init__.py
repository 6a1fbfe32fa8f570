"""Sandbox images: the offline base image and Dockerfile recipes layered on it, with content-hashed tags."""

from envgym.sandboxes.images.base_image import BaseImageSpec, build_base_image, ensure_base_image
from envgym.sandboxes.images.recipe_builder import build_recipe, recipe_hash, recipe_path

__all__ = ["BaseImageSpec", "build_base_image", "build_recipe", "ensure_base_image", "recipe_hash", "recipe_path"]
