"""Data: blur synthesis, the built-in text-document domain, unpaired/paired datasets, dataset preparation."""
