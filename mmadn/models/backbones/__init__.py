from .mobilenet_v2_adn import MobileNetV2ADN
from .resnet_adn import ResNetADN
from .static_backbones import StaticMobileNetV2, StaticResNet
from .swin_adn import SwinTransformerADN
from .vit_adn import VisionTransformerADN

__all__ = ['ResNetADN', 'MobileNetV2ADN', 'VisionTransformerADN', 'SwinTransformerADN', 'StaticResNet', 'StaticMobileNetV2']
