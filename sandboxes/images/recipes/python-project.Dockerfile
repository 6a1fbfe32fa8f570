# A Python project on the offline envgym base: copy the build context into /workspace and install its
# dependencies at build time (never at test time). Build with
#   build_recipe(recipe_path("python-project"), "myproj", context="path/to/project")
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY --chown=1000:1000 . /workspace
RUN if [ -f /workspace/requirements.txt ]; then \
      pip install --break-system-packages --no-cache-dir -r /workspace/requirements.txt; fi
WORKDIR /workspace
