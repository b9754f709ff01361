"""Colorization engine (pix2pix for colorization): L -> a*b*, pure PyTorch, no database.

Modules: ``config`` (``TrainConfig``, every training default; no torch), ``lab`` (sRGB <->
L*a*b* in torch), ``networks`` (ResNet-18 U-Net, PatchGAN), ``reference`` (the plain
fastai-style recipe, for comparison), ``data``, ``train``,
``infer`` (``Colorizer``), ``metrics`` (``evaluate``), ``checkpoint``, ``onnx_export``,
``imageio``, ``plots``, ``runtime``, ``chroma`` (the classes head's decoding), ``calibrate``
(fits that decoding's conservative end on validation photos). Importing this
package imports nothing heavy.

``DEFAULT_VIVID``: how much colour colorization puts in when nobody says (0 conservative .. 1
vivid): conservative, so what an archive shows by default is colour the model is sure of.
"""

DEFAULT_VIVID = 0.0
