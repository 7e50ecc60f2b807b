"""The U-Net for spiral arms and bars: config, data, augmentation, training, inference, metrics (no Django)."""
