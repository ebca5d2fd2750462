"""Storage bindings and files."""

from __future__ import annotations

from .base import env

DEPLITE_ALLOW_PRIVATE_STORAGE_ENDPOINTS = env.bool("DEPLITE_ALLOW_PRIVATE_STORAGE_ENDPOINTS", default=False)
DEPLITE_MAX_UPLOAD_BYTES = env.int("DEPLITE_MAX_UPLOAD_BYTES", default=5 * 1024**3)
# Capped at S3's 7 days where the URL is signed (storage.services.files).
DEPLITE_PRESIGN_EXPIRY_SECONDS = env.int("DEPLITE_PRESIGN_EXPIRY_SECONDS", default=900)
# Seconds (DESIGN §8 names the variable DEPLITE_UPLOAD_EXPIRY).
# At most this many files a job may upload as its outputs (triggers.outputs).
DEPLITE_MAX_OUTPUTS_PER_JOB = env.int("DEPLITE_MAX_OUTPUTS_PER_JOB", default=100)
DEPLITE_UPLOAD_EXPIRY = env.int("DEPLITE_UPLOAD_EXPIRY", default=24 * 3600)
