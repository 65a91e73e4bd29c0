"""Networks of the disentangled deblurring model, each a plain nn.Module."""
