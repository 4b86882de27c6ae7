"""StyleGAN2-ADA generator in the layout of NVlabs/stylegan2-ada-pytorch (training/networks.py).

Parameter names are the original's (`mapping.fc0..7.{weight,bias}`, `mapping.w_avg`,
`synthesis.b4.const`, `synthesis.bR.{conv0,conv1}.{affine.weight, affine.bias,
weight, bias, noise_const, noise_strength, resample_filter}`, `synthesis.bR.torgb.*`,
`synthesis.bR.resample_filter`, ...), so `G_ema`'s state loads strictly.

`Generator.forward(z, c, truncation_psi=1, truncation_cutoff=None, noise_mode='random',
force_fp32=False, fused_modconv=None)` returns N×3×R×R images in about [-1, 1]
(not clamped, as the original). `mapping(z, c, truncation_psi, truncation_cutoff)`
returns N×num_ws×w_dim; `synthesis(ws, noise_mode=...)` the image.
`noise_mode='const'` uses the stored `noise_const` buffers (deterministic).

The original's custom CUDA ops (upfirdn2d, bias_act, conv2d_resample) are
re-implemented after their reference (pure PyTorch) paths, which the original
also uses on the CPU. Blocks at the `num_fp16_res` highest resolutions compute
in float16 unless `force_fp32=True`, as in the original.
"""

from __future__ import annotations

import copy
import math
import zipfile
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.errors import CorruptWeights
from pipeline.networks import safe_pickle
from pipeline.networks.state_dict import load_strictly, read_state_dict

ACTIVATION_GAINS = {"linear": 1.0, "lrelu": math.sqrt(2.0), "relu": math.sqrt(2.0)}
LRELU_ALPHA = 0.2
FFHQ_1024_KWARGS = {
    "z_dim": 512, "c_dim": 0, "w_dim": 512, "img_resolution": 1024, "img_channels": 3,
    "mapping_kwargs": {"num_layers": 8},
    "synthesis_kwargs": {"channel_base": 32768, "channel_max": 512, "num_fp16_res": 0, "conv_clamp": None},
}  # fmt: skip
"""Constructor arguments assumed for a plain state_dict, which carries none: shapes are then read from
its tensors, the rest is as NVIDIA's `ffhq.pkl` (original StyleGAN2 converted by legacy.py: float32
everywhere, no clamping, mapping lr_multiplier 0.01). Networks trained with ada-pytorch's train.py use
num_fp16_res=4, conv_clamp=256: load those from their `.pkl`, which records its settings."""


# --- The original's torch_utils ops, after their reference implementations -----------------------


def setup_filter(taps=(1, 3, 3, 1)) -> torch.Tensor:
    """The 2-D low-pass filter: outer product of the taps, normalised to sum 1."""
    f = torch.as_tensor(taps, dtype=torch.float32)
    f = torch.outer(f, f) if f.ndim == 1 else f
    return f / f.sum()


def bias_act(x, b=None, act="linear", gain=None, clamp=None, dim=1):
    if b is not None:
        x = x + b.reshape([-1 if i == dim else 1 for i in range(x.ndim)])
    if act == "lrelu":
        x = F.leaky_relu(x, LRELU_ALPHA)
    elif act == "relu":
        x = F.relu(x)
    elif act != "linear":
        raise ValueError(f"activation {act!r} is not supported")
    gain = float(ACTIVATION_GAINS[act] if gain is None else gain)
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


def upfirdn2d(x, f, up=1, down=1, padding=(0, 0, 0, 0), flip_filter=False, gain=1):
    """Upsample (zero insertion), pad, FIR-filter with the 2-D `f`, downsample; padding is (x0, x1, y0, y1)."""
    batch, channels, height, width = x.shape
    padx0, padx1, pady0, pady1 = padding
    if up > 1:
        x = x.reshape(batch, channels, height, 1, width, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(batch, channels, height * up, width * up)
    x = F.pad(x, [max(padx0, 0), max(padx1, 0), max(pady0, 0), max(pady1, 0)])
    x = x[:, :, max(-pady0, 0) : x.shape[2] - max(-pady1, 0), max(-padx0, 0) : x.shape[3] - max(-padx1, 0)]
    f = (f * (gain ** (f.ndim / 2))).to(x.dtype)
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))
    f = f[None, None].repeat([channels, 1, 1, 1])
    x = F.conv2d(x, f, groups=channels)
    return x[:, :, ::down, ::down]


def upsample2d(x, f, up=2):
    fh, fw = f.shape
    padding = ((fw + up - 1) // 2, (fw - up) // 2, (fh + up - 1) // 2, (fh - up) // 2)
    return upfirdn2d(x, f, up=up, padding=padding, gain=up * up)


def conv2d_resample(x, w, f=None, up=1, padding=0, groups=1, flip_weight=True):
    """The original's conv2d_resample for the cases the generator uses (down=1)."""
    out_channels, in_per_group, kh, kw = w.shape
    px0 = px1 = py0 = py1 = padding
    if up == 1:
        weight = w if flip_weight else w.flip([2, 3])
        return F.conv2d(x, weight, padding=[py0, px0], groups=groups)
    fh, fw = f.shape
    px0 += (fw + up - 1) // 2
    px1 += (fw - up) // 2
    py0 += (fh + up - 1) // 2
    py1 += (fh - up) // 2
    if kw == 1 and kh == 1:  # convolve first, then upsample
        x = F.conv2d(x, w if flip_weight else w.flip([2, 3]), groups=groups)
        return upfirdn2d(x, f, up=up, padding=(px0, px1, py0, py1), gain=up**2)
    if groups == 1:
        w = w.transpose(0, 1)
    else:
        w = w.reshape(groups, out_channels // groups, in_per_group, kh, kw).transpose(1, 2)
        w = w.reshape(groups * in_per_group, out_channels // groups, kh, kw)
    px0 -= kw - 1
    px1 -= kw - up
    py0 -= kh - 1
    py1 -= kh - up
    pxt = max(min(-px0, -px1), 0)
    pyt = max(min(-py0, -py1), 0)
    weight = w.flip([2, 3]) if flip_weight else w  # the original's transposed call inverts flip_weight
    x = F.conv_transpose2d(x, weight, stride=up, padding=[pyt, pxt], groups=groups)
    return upfirdn2d(x, f, padding=(px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt), gain=up**2)


def normalize_2nd_moment(x, dim=1, eps=1e-8):
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def modulated_conv2d(x, weight, styles, noise=None, up=1, padding=0, resample_filter=None, demodulate=True,
                     flip_weight=True, fused_modconv=True):  # fmt: skip
    batch = x.shape[0]
    out_channels, in_channels, kh, kw = weight.shape
    if x.dtype == torch.float16 and demodulate:
        weight = weight * (1 / math.sqrt(in_channels * kh * kw) / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)
    w = dcoefs = None
    if demodulate or fused_modconv:
        w = weight.unsqueeze(0) * styles.reshape(batch, 1, -1, 1, 1)
    if demodulate:
        dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()
    if demodulate and fused_modconv:
        w = w * dcoefs.reshape(batch, -1, 1, 1, 1)
    if not fused_modconv:
        x = x * styles.to(x.dtype).reshape(batch, -1, 1, 1)
        x = conv2d_resample(x, weight.to(x.dtype), resample_filter, up=up, padding=padding, flip_weight=flip_weight)
        if demodulate and noise is not None:
            return torch.addcmul(noise.to(x.dtype), x, dcoefs.to(x.dtype).reshape(batch, -1, 1, 1))
        if demodulate:
            return x * dcoefs.to(x.dtype).reshape(batch, -1, 1, 1)
        return x.add_(noise.to(x.dtype)) if noise is not None else x
    x = x.reshape(1, -1, *x.shape[2:])
    w = w.reshape(-1, in_channels, kh, kw)
    x = conv2d_resample(x, w.to(x.dtype), resample_filter, up=up, padding=padding, groups=batch, flip_weight=flip_weight)
    x = x.reshape(batch, -1, *x.shape[2:])
    return x.add_(noise) if noise is not None else x


# --- Layers ---------------------------------------------------------------------------------------


class FullyConnectedLayer(nn.Module):
    def __init__(self, in_features, out_features, bias=True, activation="linear", lr_multiplier=1, bias_init=0):
        super().__init__()
        self.activation = activation
        self.weight = nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x):
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, act=self.activation)


class Conv2dLayer(nn.Module):
    """Only the generator's use: the 1×1 upsampling `skip` of 'resnet' blocks (and plain convs)."""

    def __init__(self, in_channels, out_channels, kernel_size, bias=True, activation="linear", up=1,
                 resample_filter=(1, 3, 3, 1), conv_clamp=None):  # fmt: skip
        super().__init__()
        self.activation, self.up, self.conv_clamp = activation, up, conv_clamp
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.act_gain = ACTIVATION_GAINS[activation]
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels])) if bias else None

    def forward(self, x, gain=1):
        w = self.weight * self.weight_gain
        b = self.bias.to(x.dtype) if self.bias is not None else None
        x = conv2d_resample(x, w.to(x.dtype), self.resample_filter, up=self.up, padding=self.padding, flip_weight=self.up == 1)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, b, act=self.activation, gain=self.act_gain * gain, clamp=clamp)


class MappingNetwork(nn.Module):
    def __init__(self, z_dim, c_dim, w_dim, num_ws, num_layers=8, embed_features=None, layer_features=None,
                 activation="lrelu", lr_multiplier=0.01, w_avg_beta=0.995):  # fmt: skip
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers, self.w_avg_beta = num_layers, w_avg_beta
        embed_features = 0 if c_dim == 0 else (w_dim if embed_features is None else embed_features)
        layer_features = w_dim if layer_features is None else layer_features
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for index in range(num_layers):
            layer = FullyConnectedLayer(features[index], features[index + 1], activation=activation, lr_multiplier=lr_multiplier)
            setattr(self, f"fc{index}", layer)
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(self, z, c=None, truncation_psi=1, truncation_cutoff=None, skip_w_avg_update=False):
        x = None
        if self.z_dim > 0:
            x = normalize_2nd_moment(z.to(torch.float32))
        if self.c_dim > 0:
            y = normalize_2nd_moment(self.embed(c.to(torch.float32)))
            x = torch.cat([x, y], dim=1) if x is not None else y
        for index in range(self.num_layers):
            x = getattr(self, f"fc{index}")(x)
        if self.w_avg_beta is not None and self.training and not skip_w_avg_update:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        if truncation_psi != 1:
            if self.num_ws is None or truncation_cutoff is None:
                x = self.w_avg.lerp(x, truncation_psi)
            else:
                x[:, :truncation_cutoff] = self.w_avg.lerp(x[:, :truncation_cutoff], truncation_psi)
        return x


class SynthesisLayer(nn.Module):
    def __init__(self, in_channels, out_channels, w_dim, resolution, kernel_size=3, up=1, use_noise=True,
                 activation="lrelu", resample_filter=(1, 3, 3, 1), conv_clamp=None):  # fmt: skip
        super().__init__()
        self.resolution, self.up, self.use_noise = resolution, up, use_noise
        self.activation, self.conv_clamp = activation, conv_clamp
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.act_gain = ACTIVATION_GAINS[activation]
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))

    def forward(self, x, w, noise_mode="random", fused_modconv=True, gain=1):
        if noise_mode not in ("random", "const", "none"):
            raise ValueError("noise_mode is one of 'random', 'const', 'none'")
        styles = self.affine(w)
        noise = None
        if self.use_noise and noise_mode == "random":
            noise = torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device) * self.noise_strength
        if self.use_noise and noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        x = modulated_conv2d(x, self.weight, styles, noise=noise, up=self.up, padding=self.padding,
                             resample_filter=self.resample_filter, flip_weight=self.up == 1, fused_modconv=fused_modconv)  # fmt: skip
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias.to(x.dtype), act=self.activation, gain=self.act_gain * gain, clamp=clamp)


class ToRGBLayer(nn.Module):
    def __init__(self, in_channels, out_channels, w_dim, kernel_size=1, conv_clamp=None):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)

    def forward(self, x, w, fused_modconv=True):
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused_modconv=fused_modconv)
        return bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp)


class SynthesisBlock(nn.Module):
    def __init__(self, in_channels, out_channels, w_dim, resolution, img_channels, is_last, architecture="skip",
                 resample_filter=(1, 3, 3, 1), conv_clamp=None, use_fp16=False, fp16_channels_last=False,
                 **layer_kwargs):  # fmt: skip  (fp16_channels_last: memory layout only, ignored)
        super().__init__()
        if architecture not in ("orig", "skip", "resnet"):
            raise ValueError(f"architecture {architecture!r}")
        self.in_channels, self.w_dim, self.resolution = in_channels, w_dim, resolution
        self.img_channels, self.is_last, self.architecture, self.use_fp16 = img_channels, is_last, architecture, use_fp16
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.num_conv = self.num_torgb = 0
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=2, resample_filter=resample_filter,
                                        conv_clamp=conv_clamp, **layer_kwargs)  # fmt: skip
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution, conv_clamp=conv_clamp, **layer_kwargs)
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)
            self.num_torgb += 1
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(in_channels, out_channels, 1, bias=False, up=2, resample_filter=resample_filter)

    def forward(self, x, img, ws, force_fp32=False, fused_modconv=None, **layer_kwargs):
        w_iter = iter(ws.unbind(dim=1))
        dtype = torch.float16 if self.use_fp16 and not force_fp32 else torch.float32
        if fused_modconv is None:
            fused_modconv = (not self.training) and (dtype == torch.float32 or int(ws.shape[0]) == 1)
        if self.in_channels == 0:
            x = self.const.to(dtype=dtype).unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
            x = self.conv1(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
        elif self.architecture == "resnet":
            x = x.to(dtype=dtype)
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
            x = self.conv1(x, next(w_iter), fused_modconv=fused_modconv, gain=math.sqrt(0.5), **layer_kwargs)
            x = y.add_(x)
        else:
            x = x.to(dtype=dtype)
            x = self.conv0(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
            x = self.conv1(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
        if img is not None:
            img = upsample2d(img, self.resample_filter)
        if self.is_last or self.architecture == "skip":
            y = self.torgb(x, next(w_iter), fused_modconv=fused_modconv).to(dtype=torch.float32)
            img = img.add_(y) if img is not None else y
        return x, img


class SynthesisNetwork(nn.Module):
    def __init__(self, w_dim, img_resolution, img_channels, channel_base=32768, channel_max=512, num_fp16_res=0,
                 **block_kwargs):  # fmt: skip
        super().__init__()
        if img_resolution < 4 or img_resolution & (img_resolution - 1):
            raise ValueError("img_resolution must be a power of two, at least 4")
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        log2 = int(math.log2(img_resolution))
        self.block_resolutions = [2**i for i in range(2, log2 + 1)]
        channels = {res: min(channel_base // res, channel_max) for res in self.block_resolutions}
        fp16_resolution = max(2 ** (log2 + 1 - num_fp16_res), 8)
        self.num_ws = 0
        for res in self.block_resolutions:
            block = SynthesisBlock(channels[res // 2] if res > 4 else 0, channels[res], w_dim, res, img_channels,
                                   is_last=res == img_resolution, use_fp16=res >= fp16_resolution, **block_kwargs)  # fmt: skip
            self.num_ws += block.num_conv + (block.num_torgb if res == img_resolution else 0)
            setattr(self, f"b{res}", block)

    def forward(self, ws, **block_kwargs):
        ws = ws.to(torch.float32)
        x = img = None
        w_index = 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            block_ws = ws.narrow(1, w_index, block.num_conv + block.num_torgb)
            w_index += block.num_conv
            x, img = block(x, img, block_ws, **block_kwargs)
        return img


class Generator(nn.Module):
    def __init__(self, z_dim, c_dim, w_dim, img_resolution, img_channels, mapping_kwargs=None, synthesis_kwargs=None):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.synthesis = SynthesisNetwork(w_dim, img_resolution, img_channels, **dict(synthesis_kwargs or {}))
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim, c_dim, w_dim, self.num_ws, **dict(mapping_kwargs or {}))

    def forward(self, z, c=None, truncation_psi=1, truncation_cutoff=None, **synthesis_kwargs):
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, **synthesis_kwargs)


GENERATOR_ARGUMENTS = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs", "synthesis_kwargs")


def generator_from_kwargs(kwargs: dict) -> Generator:
    """A Generator from the pickled `G_ema._init_kwargs`; arguments that only matter for training are dropped."""
    known = {key: kwargs[key] for key in GENERATOR_ARGUMENTS if key in kwargs}
    return Generator(**known)


def kwargs_for_state_dict(state: dict) -> dict:
    """Constructor arguments for a plain state_dict: shapes from its tensors, the rest from FFHQ_1024_KWARGS."""
    kwargs = copy.deepcopy(FFHQ_1024_KWARGS)
    resolutions = sorted({int(key.split(".")[1][1:]) for key in state if key.startswith("synthesis.b")})
    fc_layers = sorted({int(key.split(".")[1][2:]) for key in state if key.startswith("mapping.fc")})
    if not resolutions or not fc_layers:
        return kwargs
    last = f"synthesis.b{resolutions[-1]}"
    kwargs["img_resolution"] = resolutions[-1]
    kwargs["img_channels"] = state[f"{last}.torgb.weight"].shape[0]
    kwargs["w_dim"] = state["mapping.fc0.weight"].shape[0]
    kwargs["c_dim"] = state["mapping.embed.weight"].shape[1] if "mapping.embed.weight" in state else 0
    embed = state["mapping.embed.weight"].shape[0] if "mapping.embed.weight" in state else 0
    kwargs["z_dim"] = state["mapping.fc0.weight"].shape[1] - embed
    kwargs["mapping_kwargs"]["num_layers"] = len(fc_layers)
    synthesis = kwargs["synthesis_kwargs"]
    synthesis["channel_max"] = max(state[f"synthesis.b{r}.conv1.weight"].shape[0] for r in resolutions)
    synthesis["channel_base"] = state[f"{last}.conv1.weight"].shape[0] * resolutions[-1]
    if any(key.endswith(".skip.weight") for key in state):
        synthesis["architecture"] = "resnet"
    elif len(resolutions) > 1 and f"synthesis.b{resolutions[0]}.torgb.weight" not in state:
        synthesis["architecture"] = "orig"
    else:
        synthesis["architecture"] = "skip"
    if not any(key.endswith(".noise_const") for key in state):
        synthesis["use_noise"] = False
    return kwargs


def load(path: Path, device: str = "cpu", name: str = "stylegan2_ffhq_1024") -> Generator:
    """`G_ema` of a stylegan2-ada-pytorch `.pkl` (read without executing its embedded source) or a plain state_dict, in eval mode."""
    return read_generator(path, name).to(device).eval()


def read_generator(path: Path, name: str) -> Generator:

    def from_state_dict():
        state = {key.removeprefix("G_ema."): value for key, value in read_state_dict(path).items()}
        return load_strictly(generator_from_kwargs(kwargs_for_state_dict(state)), state, name)

    if zipfile.is_zipfile(path):
        return from_state_dict()
    try:
        content = safe_pickle.load_nvidia_pickle(path)
    except safe_pickle.UnsafePickle as error:
        if "dnnlib.tflib" in str(error):
            raise CorruptWeights(f"{path.name} is a TensorFlow StyleGAN pickle; this version reads PyTorch ones only") from None
        raise CorruptWeights(f"{path.name} was refused: {error}") from None
    except Exception as error:  # a truncated or foreign file raises many types
        raise CorruptWeights(f"{path.name} is not a readable StyleGAN2-ADA pickle ({type(error).__name__})") from None
    if isinstance(content, int):  # the magic number that opens a legacy (pre-zip) torch.save file
        return from_state_dict()
    generator = content.get("G_ema", content.get("G")) if isinstance(content, dict) else content
    if not safe_pickle.is_module_record(generator) or generator.pickled_class != "Generator":
        raise CorruptWeights(f"{path.name} holds no StyleGAN2-ADA generator (G_ema)")
    kwargs = generator.state.get("_init_kwargs") or {}
    args = generator.state.get("_init_args") or ()
    if args:
        kwargs = {**dict(zip(GENERATOR_ARGUMENTS, args)), **kwargs}
    try:
        model = generator_from_kwargs(dict(kwargs))
    except (TypeError, ValueError) as error:
        raise CorruptWeights(f"{path.name}: its generator settings are not supported ({error})") from None
    return load_strictly(model, safe_pickle.module_state_dict(generator), name)
