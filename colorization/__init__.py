"""Colorization engine (pix2pix for colorization): L -> a*b*, pure PyTorch, no database.

Modules: ``lab`` (sRGB <-> L*a*b* in torch), ``networks`` (ResNet-18 U-Net, PatchGAN),
``reference`` (the plain fastai-style recipe, for comparison), ``data``, ``train``,
``infer`` (``Colorizer``), ``metrics`` (``evaluate``), ``checkpoint``, ``onnx_export``,
``imageio``, ``plots``, ``runtime``. Importing this package imports nothing heavy.
"""
