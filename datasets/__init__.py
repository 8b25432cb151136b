"""Dataset plugins: one module per dataset, each registering a `DatasetPlugin` subclass."""
