"""Demo content for a monthly machine-learning research newsletter (seed_demo)."""

from __future__ import annotations

from datetime import UTC, datetime

from newsletter.models import Publication

from .models import Citation, Issue, Paper, Tag

PUBLICATION = {
    "name": "Gradient Notes",
    "description": "A monthly letter on machine-learning research: the papers worth "
    "your evening, the code worth cloning, and how to keep up without drowning.",
}

TAGS = {
    "vision": "Vision",
    "diffusion": "Diffusion",
    "llm": "Language models",
    "efficiency": "Efficiency",
    "open-source": "Open source",
    "study": "Study tips",
}

# slug: (title, authors, year, venue, arxiv, code, tags, summary)
PAPERS = {
    "convnext": (
        "A ConvNet for the 2020s",
        ["Zhuang Liu", "Hanzi Mao", "Chao-Yuan Wu", "Christoph Feichtenhofer",
         "Trevor Darrell", "Saining Xie"],
        2022, "CVPR", "2201.03545", "https://github.com/facebookresearch/ConvNeXt",
        ["vision"],
        "Modernizes a plain ResNet step by step with choices borrowed from vision "
        "Transformers (patchify stem, depthwise convolutions, inverted bottlenecks, "
        "fewer norms and activations) and matches Swin at equal compute.",
    ),
    "maxvit": (
        "MaxViT: Multi-Axis Vision Transformer",
        ["Zhengzhong Tu", "Hossein Talebi", "Han Zhang", "Feng Yang",
         "Peyman Milanfar", "Alan Bovik", "Yinxiao Li"],
        2022, "ECCV", "2204.01697", "https://github.com/google-research/maxvit",
        ["vision"],
        "Blocked local attention plus dilated *grid* attention gives global "
        "interaction at linear cost; a strong hybrid backbone with MBConv.",
    ),
    "latent-diffusion": (
        "High-Resolution Image Synthesis with Latent Diffusion Models",
        ["Robin Rombach", "Andreas Blattmann", "Dominik Lorenz", "Patrick Esser",
         "Björn Ommer"],
        2022, "CVPR", "2112.10752", "https://github.com/CompVis/latent-diffusion",
        ["diffusion", "vision"],
        "Runs diffusion in the latent space of a pretrained autoencoder, with "
        "cross-attention conditioning: the recipe behind Stable Diffusion.",
    ),
    "mae": (
        "Masked Autoencoders Are Scalable Vision Learners",
        ["Kaiming He", "Xinlei Chen", "Saining Xie", "Yanghao Li", "Piotr Dollár",
         "Ross Girshick"],
        2022, "CVPR", "2111.06377", "https://github.com/facebookresearch/mae",
        ["vision"],
        "Mask 75% of image patches, encode only the visible ones, reconstruct "
        "pixels: simple, fast self-supervised pretraining for ViTs.",
    ),
    "chinchilla": (
        "Training Compute-Optimal Large Language Models",
        ["Jordan Hoffmann", "Sebastian Borgeaud", "Arthur Mensch",
         "Elena Buchatskaya", "Trevor Cai", "Eliza Rutherford"],
        2022, "NeurIPS", "2203.15556", "",
        ["llm", "efficiency"],
        "For a fixed compute budget, scale parameters and training tokens equally; "
        "a 70B model trained on 1.4T tokens beats far larger ones.",
    ),
    "instructgpt": (
        "Training language models to follow instructions with human feedback",
        ["Long Ouyang", "Jeff Wu", "Xu Jiang", "Diogo Almeida",
         "Carroll L. Wainwright", "Pamela Mishkin"],
        2022, "NeurIPS", "2203.02155", "",
        ["llm"],
        "Supervised fine-tuning on demonstrations, a reward model from human "
        "rankings, then PPO: RLHF as a practical alignment recipe.",
    ),
    "flamingo": (
        "Flamingo: a Visual Language Model for Few-Shot Learning",
        ["Jean-Baptiste Alayrac", "Jeff Donahue", "Pauline Luc", "Antoine Miech"],
        2022, "NeurIPS", "2204.14198", "",
        ["llm", "vision"],
        "Bridges a frozen vision encoder and a frozen language model with gated "
        "cross-attention; strong few-shot results on interleaved image-text input.",
    ),
    "whisper": (
        "Robust Speech Recognition via Large-Scale Weak Supervision",
        ["Alec Radford", "Jong Wook Kim", "Tao Xu", "Greg Brockman",
         "Christine McLeavey", "Ilya Sutskever"],
        2022, "", "2212.04356", "https://github.com/openai/whisper",
        ["open-source"],
        "680,000 hours of weakly supervised audio and a plain encoder-decoder "
        "Transformer give speech recognition that transfers zero-shot.",
    ),
    "chain-of-thought": (
        "Chain-of-Thought Prompting Elicits Reasoning in Large Language Models",
        ["Jason Wei", "Xuezhi Wang", "Dale Schuurmans", "Maarten Bosma",
         "Brian Ichter", "Fei Xia", "Ed Chi", "Quoc Le", "Denny Zhou"],
        2022, "NeurIPS", "2201.11903", "",
        ["llm"],
        "A few worked examples with intermediate steps make large models far "
        "better at arithmetic and multi-step reasoning.",
    ),
    "flashattention": (
        "FlashAttention: Fast and Memory-Efficient Exact Attention with IO-Awareness",
        ["Tri Dao", "Daniel Y. Fu", "Stefano Ermon", "Atri Rudra",
         "Christopher Ré"],
        2022, "NeurIPS", "2205.14135", "https://github.com/Dao-AILab/flash-attention",
        ["efficiency", "open-source"],
        "Exact attention computed in tiles that stay in on-chip SRAM: fewer memory "
        "reads, 2-4x faster training and linear memory in sequence length.",
    ),
    "imagen": (
        "Photorealistic Text-to-Image Diffusion Models with Deep Language "
        "Understanding",
        ["Chitwan Saharia", "William Chan", "Saurabh Saxena", "Lala Li",
         "Jay Whang"],
        2022, "NeurIPS", "2205.11487", "",
        ["diffusion"],
        "A large frozen text encoder (T5-XXL) matters more than a larger image "
        "diffusion model; cascaded super-resolution to 1024px.",
    ),
    "ddpm": (
        "Denoising Diffusion Probabilistic Models",
        ["Jonathan Ho", "Ajay Jain", "Pieter Abbeel"],
        2020, "NeurIPS", "2006.11239", "https://github.com/hojonathanho/diffusion",
        ["diffusion"],
        "The paper that made diffusion models practical image generators.",
    ),
    "vit": (
        "An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale",
        ["Alexey Dosovitskiy", "Lucas Beyer", "Alexander Kolesnikov",
         "Dirk Weissenborn", "Xiaohua Zhai"],
        2021, "ICLR", "2010.11929", "https://github.com/google-research/vision_transformer",
        ["vision"],
        "Split an image into patches, feed them to a standard Transformer: with "
        "enough data it beats convolutional networks.",
    ),
    "lora": (
        "LoRA: Low-Rank Adaptation of Large Language Models",
        ["Edward J. Hu", "Yelong Shen", "Phillip Wallis", "Zeyuan Allen-Zhu",
         "Yuanzhi Li", "Shean Wang", "Lu Wang", "Weizhu Chen"],
        2022, "ICLR", "2106.09685", "https://github.com/microsoft/LoRA",
        ["llm", "efficiency", "open-source"],
        "Freeze the pretrained weights and learn a low-rank update per layer: "
        "fine-tuning with a tiny fraction of the trainable parameters.",
    ),
}  # fmt: skip

ISSUE_CONVNETS = """\
Welcome to the first issue of **Gradient Notes**. Each month: the trends worth \
knowing, a handful of papers with cards you can click through, open-source \
highlights, a quote and a study tip.

## Trend of the month: convolutions strike back

Two years after [[arxiv:2010.11929]] made "just use a Transformer" the default \
for vision, ConvNeXt asks a sharp question: how much of the ViT advantage is \
*architecture*, and how much is the *training recipe*?

[[arxiv:2201.03545]]

The answer is uncomfortable for both camps. Starting from a ResNet-50 and \
applying the modern recipe (AdamW, 300 epochs, heavy augmentation) already \
closes most of the gap. The rest comes from a sequence of small design moves:

| step | change | ImageNet-1k top-1 |
|---|---|---:|
| 0 | ResNet-50, modern training | 78.8 |
| 1 | stage ratio 3:3:9:3, patchify stem | 79.5 |
| 2 | depthwise conv, wider | 80.5 |
| 3 | inverted bottleneck, 7×7 kernels | 80.6 |
| 4 | LayerNorm, GELU, fewer activations | 82.0 |

The whole block fits in a dozen lines of PyTorch:

```python
class ConvNeXtBlock(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)

    def forward(self, x):
        shortcut = x
        x = self.dwconv(x).permute(0, 2, 3, 1)  # (N, C, H, W) -> (N, H, W, C)
        x = self.pwconv2(self.act(self.pwconv1(self.norm(x))))
        return shortcut + x.permute(0, 3, 1, 2)
```

Meanwhile [[arxiv:2111.06377]] shows that self-supervised pretraining for ViTs \
can be both simple and cheap: drop 75% of the patches and reconstruct them.

## Open-source highlights

- **timm** keeps adding every new backbone within days, with pretrained \
weights; ConvNeXt was there the week it came out.
- The official ConvNeXt repository ships ImageNet-22k checkpoints that make \
strong starting points for detection and segmentation.

## Quote of the month

> "The design space of ConvNets has not been fully explored."
>
> — Liu et al., *A ConvNet for the 2020s*

## Study tip

Read the **ablation table first**. It tells you which ideas carried the result, \
and it is usually where the paper's honest story lives.[^ablation]

[^ablation]: Then read the training details in the appendix: half the time, \
that is where the gap between your reproduction and theirs comes from.
"""

ISSUE_DIFFUSION = """\
## Trend of the month: diffusion goes latent

[[arxiv:2006.11239]] made diffusion models practical, but sampling at pixel \
level is expensive. Latent diffusion moves the whole process into the \
compressed space of an autoencoder:

[[arxiv:2112.10752]]

Why it matters:

1. **Cost.** A 4× or 8× downsampled latent means each denoising step is far \
cheaper, so training fits on academic budgets.
2. **Conditioning.** Cross-attention layers accept text, layouts or semantic \
maps with one mechanism.
3. **Open weights.** The same recipe, trained at scale, became Stable Diffusion.

Google's answer, [[arxiv:2205.11487]], goes the other way: keep pixel-space \
cascades, but use a *much* larger frozen text encoder. Their finding: scaling \
the text encoder helps more than scaling the image model.

## Open-source highlights

- The CompVis latent-diffusion repository includes the autoencoders, so you \
can train your own latent model on a single-GPU budget.
- ~~Pixel-space samplers~~ DDIM-style samplers cut sampling from 1,000 steps \
to 50 with little loss in quality.

## Quote of the month

> "By introducing cross-attention layers into the model architecture, we turn
> diffusion models into powerful and flexible generators." — Rombach et al.

## Study tip

Implement the **forward noising process** yourself before reading any sampler \
code. Ten lines of NumPy make the rest of the paper click:

```python
import numpy as np

betas = np.linspace(1e-4, 0.02, 1000)
alphas_bar = np.cumprod(1 - betas)

def q_sample(x0, t, rng=np.random.default_rng(0)):
    noise = rng.standard_normal(x0.shape)
    return np.sqrt(alphas_bar[t]) * x0 + np.sqrt(1 - alphas_bar[t]) * noise
```
"""

ISSUE_SCALING = """\
## Trend of the month: scaling laws, revisited

For two years the rule was: make the model bigger. Chinchilla changes the \
budget split.

[[arxiv:2203.15556]]

With a fixed compute budget, parameters and training tokens should grow \
*together*. Gopher (280B parameters) was undertrained; Chinchilla (70B, 4× the \
data) beats it on almost every benchmark, and is cheaper to serve.

Training efficiently matters as much as training the right size. \
FlashAttention makes exact attention IO-aware:

[[arxiv:2205.14135]]

## Open-source highlights

- **FlashAttention** is a drop-in kernel; PyTorch 2 ships a version of it in \
`scaled_dot_product_attention`.
- **LoRA** adapters ([[arxiv:2106.09685]]) make fine-tuning a 7B model possible \
on one consumer GPU.

## Study tip

Keep a *compute ledger* for every experiment you run: FLOPs, tokens seen, \
wall-clock, and the result. Scaling-law plots are only as good as their \
bookkeeping.

<!-- paywall -->

## Supporters' deep dive: fitting your own scaling law

Chinchilla's third approach fits a parametric loss \
L(N, D) = E + A/N^α + B/D^β to every training run. You can do the same with \
your own small sweeps:

```python
import numpy as np
from scipy.optimize import minimize

def loss_model(params, N, D):
    E, A, B, alpha, beta = params
    return E + A / N**alpha + B / D**beta

def fit(N, D, L):
    objective = lambda p: np.mean(np.abs(np.log(loss_model(p, N, D)) - np.log(L)))
    return minimize(objective, x0=[1.7, 400, 410, 0.34, 0.28], method="L-BFGS-B").x
```

Three practical notes from reproducing it:

- Use at least 4 model sizes spanning 10× in parameters; fewer and α and β \
trade off against each other.
- Fit on *final* losses of runs with a cosine schedule matched to their \
length. Intermediate checkpoints of a longer run bias the fit.
- The Huber loss on log-loss in the paper is not decoration: a single \
diverged run otherwise dominates the fit.
"""

ISSUE_TOP10 = """\
Every January we pick the ten papers from the past year that we expect to \
still be reading in five years. The full ranked list, with a line on each, is \
at the end of this issue and on the [top papers of 2022](/papers/top/2022/) \
page.

## The short version

The year's story in three sentences: **language models learned to follow \
instructions** ([[arxiv:2203.02155]]) and to show their reasoning \
([[arxiv:2201.11903]]); **compute-optimal training** ([[arxiv:2203.15556]]) and \
**IO-aware kernels** ([[arxiv:2205.14135]]) made them cheaper; and **image \
generation went open** with latent diffusion ([[arxiv:2112.10752]]).

## Vision held its ground

Convolutional and hybrid backbones had a strong year. ConvNeXt \
([[arxiv:2201.03545]]) and MaxViT are our picks:

[[arxiv:2204.01697]]

MaxViT's multi-axis attention is worth understanding on its own: block \
attention for local detail, grid attention for global context, both linear in \
image size. Pair it with masked pretraining ([[arxiv:2111.06377]]) and you have \
2022's vision recipe.

## Multimodal and speech

[[arxiv:2204.14198]] showed few-shot learning across images and text; \
[[arxiv:2212.04356]] made robust speech recognition something you can \
`pip install`.

## Quote of the year

> "Making language models bigger does not inherently make them better at
> following a user's intent." — Ouyang et al.

## Study tip for the new year

Pick **one** paper from this list and reproduce a single figure from it. You \
will learn more than from skimming all ten.
"""

ISSUE_DRAFT = """\
## Instruction tuning, six months later

Notes for next month: compare RLHF ([[arxiv:2203.02155]]) with plain \
supervised instruction tuning on open models; collect the open datasets.

- [ ] Find a fair evaluation
- [ ] Ask readers which models they fine-tune
"""

TOP10 = [
    ("instructgpt", "RLHF went from research idea to the default recipe."),
    ("chinchilla", "Changed how every lab budgets compute."),
    ("latent-diffusion", "Open image generation, on hardware people own."),
    ("flashattention", "The kernel everyone now uses without noticing."),
    ("chain-of-thought", "Prompting became a research topic of its own."),
    ("convnext", "A clean lesson in separating recipe from architecture."),
    ("mae", "Self-supervised vision that is simple and cheap."),
    ("flamingo", "Few-shot multimodal learning with frozen parts."),
    ("whisper", "Weak supervision at scale, and open weights."),
    ("maxvit", "Global attention at linear cost for vision backbones."),
]


def _at(year: int, month: int, day: int = 1) -> datetime:
    return datetime(year, month, day, 8, 0, tzinfo=UTC)


ISSUES = [
    # slug, title, subtitle, body, tags, status, access, published_at
    ("convolutions-strike-back", "Convolutions strike back",
     "ConvNeXt, masked autoencoders, and why the training recipe matters.",
     ISSUE_CONVNETS, ["vision", "study"], "published", "free", _at(2022, 2, 3)),
    ("diffusion-goes-latent", "Diffusion goes latent",
     "Latent diffusion, Imagen, and ten lines of NumPy to understand them.",
     ISSUE_DIFFUSION, ["diffusion", "open-source"], "published", "free",
     _at(2022, 5, 5)),
    ("scaling-laws-revisited", "Scaling laws, revisited",
     "Chinchilla, FlashAttention, and (for supporters) fitting your own law.",
     ISSUE_SCALING, ["llm", "efficiency"], "published", "free", _at(2022, 7, 7)),
    ("top-10-papers-of-2022", "The top 10 papers of 2022",
     "Our ranked list of the year's papers you will still be reading in 2027.",
     ISSUE_TOP10, ["llm", "vision", "diffusion"], "published", "free",
     _at(2023, 1, 12)),
    ("instruction-tuning-notes", "Instruction tuning, six months later",
     "Draft: not yet published.",
     ISSUE_DRAFT, ["llm"], "draft", "free", None),
]  # fmt: skip


def load_demo() -> dict[str, int]:
    """Create or update the demo publication, tags, papers and issues."""
    publication = Publication.load()
    for name, value in PUBLICATION.items():
        setattr(publication, name, value)
    publication.save()

    tags = {}
    for slug, name in TAGS.items():
        tags[slug], _ = Tag.objects.update_or_create(slug=slug, defaults={"name": name})

    papers = {}
    for slug, (
        title,
        authors,
        year,
        venue,
        arxiv,
        code,
        tag_slugs,
        summary,
    ) in PAPERS.items():
        paper = Paper.objects.filter(slug=slug).first() or Paper(slug=slug)
        paper.title, paper.authors, paper.year = title, authors, year
        paper.venue, paper.arxiv_id, paper.code_url = venue, arxiv, code
        paper.summary = summary
        paper.save()
        paper.tags.set([tags[t] for t in tag_slugs])
        papers[slug] = paper

    for slug, title, subtitle, body, tag_slugs, status, access, published_at in ISSUES:
        issue = Issue.objects.filter(slug=slug).first() or Issue(slug=slug)
        issue.title, issue.subtitle, issue.body = title, subtitle, body
        issue.status, issue.access, issue.published_at = status, access, published_at
        issue.save()
        issue.tags.set([tags[t] for t in tag_slugs])

    top = Issue.objects.get(slug="top-10-papers-of-2022")
    for rank, (paper_slug, note) in enumerate(TOP10, start=1):
        Citation.objects.update_or_create(
            issue=top,
            paper=papers[paper_slug],
            defaults={"rank": rank, "note": note, "position": rank},
        )
    return {"issues": len(ISSUES), "papers": len(PAPERS), "tags": len(TAGS)}
