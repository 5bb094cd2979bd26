"""snnpipe: train spiking networks, export them to Loihi, ONNX or NIR, and profile their energy.

``snnpipe.deploy(module, sample, out, dataset=..., timesteps=...)`` exports a network of snnTorch,
SpikingJelly, Norse or Sinabs without its NIR writer (`snnpipe.pipeline.deploy`).
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    if name == "deploy":  # on first use: importing snnpipe imports no torch
        from snnpipe.pipeline.deploy import deploy

        return deploy
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
