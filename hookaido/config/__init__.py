"""The Hookaidofile: parse, lint against JSON Schema, format and compile."""
