"""Analytics service: daily rollups and period snapshots."""
