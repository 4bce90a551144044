"""Operations shared by the CLI and the HTTP layer; they flush, the caller commits."""
