from .resnet_adn import ResNetADN
from .static_resnet import StaticResNet

__all__ = ['ResNetADN', 'StaticResNet']
