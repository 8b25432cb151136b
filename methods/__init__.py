"""Method plugins: one module per method, each registering a `Method` subclass."""
