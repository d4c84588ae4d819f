from .resnet_adn import ResNetADN

__all__ = ['ResNetADN']
