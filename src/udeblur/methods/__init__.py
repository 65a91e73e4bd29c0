"""Training methods: each owns its networks, optimizers and one training step; training/trainer.py runs any of them.

* :mod:`.base`: the contract (:class:`Method`) and the helpers every method shares;
* :mod:`.disentangled`: the paper's model with the text additions (``train.method: disentangled``, the default);
* :mod:`.supervised`: the same deblurring path trained on paired crops (``train.method: supervised``);
* :mod:`.template`: a small, commented method to copy;
* :mod:`.registry`: names to classes.
"""
