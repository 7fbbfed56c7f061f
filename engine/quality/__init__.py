"""Quality: `evaluate` turns labelled queries into metrics per mode; `tune` fits the fusion to them."""
