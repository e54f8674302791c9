"""Reading and writing images (and, later, video)."""
