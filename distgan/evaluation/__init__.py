"""FID, KID and Inception Score: feature extraction, reference statistics, metrics, tracking."""
