"""ODN: progressive depth expansion to the optimal depth, extracted as a smaller model (spec: odn.md).

Model (``ODNResNet``, ``ODNClsHead``, ``ODNClassifier``), decision rule (``DepthExpansion``), training procedure
(``ODNTrainLoop``) and extraction (``extract``); importing registers them in mmpretrain (and mmdet) registries.
"""
from .classifier import ODNClassifier
from .expansion import Decision, DepthExpansion
from .extract import extract, extract_state_dict, extracted_model_cfg, model_stats
from .heads import ODNClsHead
from .loop import ODNTrainLoop
from .resnet_cifar import ODNResNet, blocks_up_to
from mmadn.datasets.synthetic_digits import make_digits_folder

__all__ = [
    'ODNResNet', 'ODNClsHead', 'ODNClassifier', 'DepthExpansion', 'Decision', 'ODNTrainLoop', 'extract',
    'extract_state_dict', 'extracted_model_cfg', 'model_stats', 'blocks_up_to', 'make_digits_folder'
]
