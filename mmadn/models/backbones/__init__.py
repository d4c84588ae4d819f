from .mobilenet_v2_adn import MobileNetV2ADN
from .resnet_adn import ResNetADN
from .static_resnet import StaticResNet

__all__ = ['ResNetADN', 'StaticResNet', 'MobileNetV2ADN']
