"""The `udeblur` command line: a thin layer over the Python API."""

# the --tone-anchor help of `udeblur deblur` and `udeblur serve`, whose default comes from
# udeblur.inference.pretrained.resolve_model (kept here: importing udeblur.inference loads torch)
TONE_ANCHOR_HELP = ("keep the input's tone at scales above SIGMA px (blur keeps local means; 0: off); "
                    "default: the model's own, 16 for the bundled text model, 0 for a --model file")
