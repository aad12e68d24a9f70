# Container images without a container engine; the root Makefile includes this file.
#   make images       the release binaries on a Debian-package root filesystem, as OCI layouts
#                     under $(IMAGES_DIR)/oci/{rag-operator,rag-runtime}, tagged with the version
#   make images-test  runs both images under runc, restricted as in the chart (needs root;
#                     SKIPPED without it)
# images/Dockerfile builds the same images with docker buildx (the release workflow).
#
# In `make test` the images are made from the debug binaries the other tests have built already
# (layouts in oci-debug/): a cold release build of the workspace (thin LTO) costs about 30 min of
# CPU, which CI would pay on every cold machine. IMAGES_TEST_PROFILE=release tests the release
# images instead; IMAGES_PROFILE picks the binaries of `make images` and `make images-test`.
.PHONY: images images-bins images-test

IMAGES_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/ragops-images
IMAGES_PROFILE ?= release
IMAGES_TEST_PROFILE ?= debug
export RAGOPS_IMAGES_DIR := $(IMAGES_DIR)

# The whole workspace, as everywhere else (one feature set, shared dependencies).
images-bins:
	$(CARGO) build --workspace --bins $(if $(filter release,$(IMAGES_PROFILE)),--release,$(if $(filter-out debug,$(IMAGES_PROFILE)),--profile $(IMAGES_PROFILE)))

images: images-bins
	RAGOPS_IMAGES_PROFILE=$(IMAGES_PROFILE) images/build-images.sh $(TARGET_DIR)/$(IMAGES_PROFILE)

images-test: images e2e-bins
	RAGOPS_IMAGES_PROFILE=$(IMAGES_PROFILE) images/test-images.sh

test: images-test
test: IMAGES_PROFILE = $(IMAGES_TEST_PROFILE)
