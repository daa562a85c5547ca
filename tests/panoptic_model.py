"""Toy panoptic models for the tests: they read the answer from the photograph (R = 20 x category id, G = segment).

``oracle`` returns a panoptic map; ``oracle_merge`` returns an instance and a semantic output for the task to merge.
Their label map is ``LABELS`` (category id ``c`` is output ``c - 1``; ``background`` maps to nothing).
"""

import torch

LABELS = ["person", "ball", "dog", "sky", "grass", "wall", "background"]
STUFF = {4, 5, 6}


def _decode(image):
    pixels = (image * 255).round().long()
    return pixels[1], pixels[0] // 20  # segment, category id (0: void)


class Oracle(torch.nn.Module):
    def __init__(self, merge: bool = False):
        super().__init__()
        self.merge = merge
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, images):
        out = []
        for image in images:
            segment, category = _decode(image)
            ids = [int(s) for s in torch.unique(segment) if s != 0]
            cats = {s: int(category[segment == s][0]) for s in ids}
            if not self.merge:
                out.append({"panoptic_seg": segment, "segments_info": [{"id": s, "category_id": cats[s] - 1}
                                                                       for s in ids]})
                continue
            things = [s for s in ids if cats[s] not in STUFF]
            masks = torch.stack([segment == s for s in things]) if things else torch.zeros((0, *segment.shape))
            semantic = torch.where(category > 0, category - 1, torch.full_like(category, len(LABELS) - 1))
            out.append({"instances": {"masks": masks.float(), "labels": torch.tensor([cats[s] - 1 for s in things]),
                                      "scores": torch.linspace(0.99, 0.9, len(things))},
                        "sem_seg": semantic})
        return out


def oracle():
    return Oracle()


def oracle_merge():
    return Oracle(merge=True)
