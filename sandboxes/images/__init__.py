"""Sandbox images: the offline base image and Dockerfile recipes layered on it, with content-hashed tags."""

from envgym.sandboxes.images.base_image import BaseImageSpec, build_base_image, ensure_base_image

__all__ = ["BaseImageSpec", "build_base_image", "ensure_base_image"]
