"""The author's dashboard and growth pages, read from daily rollups."""
