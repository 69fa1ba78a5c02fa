"""Convention-specific attribute mapping into SpanRow."""
