"""Prebuilt RAM loader ELFs (written by `make -C loader_fw`)."""
