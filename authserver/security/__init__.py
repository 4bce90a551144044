"""Secret hashing and signing-key storage: the only modules that touch key material."""
