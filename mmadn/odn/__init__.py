"""ODN: progressive depth expansion to the optimal depth, extracted as a smaller model (spec: odn.md).

Model (``ODNResNet``, ``ODNClsHead``, ``ODNClassifier``), decision rule (``DepthExpansion``), training procedure
(``ODNTrainLoop``), extraction (``extract``), the run's decisions as a summary and a plot (``report``) and the
expansion demo's data (``dotted_lines``); importing registers them in mmpretrain (and mmdet) registries.
"""
from .classifier import ODNClassifier
from .dotted_lines import make_dotted_lines_folder
from .expansion import Decision, DepthExpansion
from .extract import extract, extract_state_dict, extracted_model_cfg, model_stats
from .heads import ODNClsHead
from .loop import ODNTrainLoop
from .report import expansion_summary, load_result, plot_expansion
from .resnet_cifar import ODNResNet, blocks_up_to
from mmadn.datasets.synthetic_digits import make_digits_folder

__all__ = [
    'ODNResNet', 'ODNClsHead', 'ODNClassifier', 'DepthExpansion', 'Decision', 'ODNTrainLoop', 'extract',
    'extract_state_dict', 'extracted_model_cfg', 'model_stats', 'blocks_up_to', 'make_digits_folder',
    'make_dotted_lines_folder', 'expansion_summary', 'load_result', 'plot_expansion'
]
