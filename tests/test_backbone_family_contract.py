"""The backbone family contract is checked when a family's class statement runs, not when export or distillation
first needs a duty (``AdaptiveDepthMixin.__init_subclass__``, docs/adn.md "Adding a backbone family")."""
import pytest
import torch
from mmdet.models.backbones import ResNet
from mmpretrain.models.backbones.vision_transformer import TransformerEncoderLayer

from mmadn.models import ResNetADN
from mmadn.models.backbones.vit_adn import ADNTransformerEncoderLayer
from mmadn.models.utils.adaptive_depth import FAMILY_DUTIES, AdaptiveDepthMixin
from mmadn.models.utils.skippable import retype
from mmadn.models.utils.twin_norm_loading import TwinNormLoadHook


def test_the_duties_are_what_the_code_calls():
    assert set(FAMILY_DUTIES) == {'load_hook', 'checkpoint_layouts', 'static_config', 'stage_module_names'}


def test_an_incomplete_family_fails_at_class_creation_naming_every_missing_duty():
    with pytest.raises(TypeError) as error:

        class ConvNeXtADN(AdaptiveDepthMixin, ResNet):
            load_hook = TwinNormLoadHook(probe='stem.0.weight', family='ConvNeXt')

    message = str(error.value)
    assert message.startswith('ConvNeXtADN ')
    for duty in ('checkpoint_layouts', 'static_config', 'stage_module_names'):
        assert f'  - {duty}: ' in message  # each missing duty on its own line, with how to declare it
    assert 'load_hook' not in message  # declared
    assert 'Adding a backbone family' in message


@pytest.mark.parametrize('duty', list(FAMILY_DUTIES))
def test_each_duty_is_required_on_its_own(duty):
    with pytest.raises(TypeError, match=f'TinyResNetADN .*does not declare {duty}\\. '):
        type('TinyResNetADN', (ResNetADN, ), {duty: None})


def test_a_complete_toy_subclass_of_a_family_is_accepted_and_works():

    class TinyResNetADN(ResNetADN):
        """A family variant overriding one duty; the others are inherited."""

        def stage_module_names(self):
            return list(self.res_layers[:2])

    torch.manual_seed(0)
    model = TinyResNetADN(depth=18, base_channels=8, out_indices=(3, )).eval()
    assert model.stage_module_names() == ['layer1', 'layer2']
    model.skip = 'TFTF'
    cfg, static = model.to_static(fuse=True)
    assert cfg['type'] == 'StaticResNet' and cfg['stage_blocks'] == (1, 2, 1, 2)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(static(x)[0], model(x)[0], atol=1e-5, rtol=1e-4)


def test_a_partial_base_defers_the_check_to_its_subclasses():

    class PartialADN(AdaptiveDepthMixin, ResNet, abstract=True):
        load_hook = ResNetADN.load_hook

    with pytest.raises(TypeError, match='StillPartialADN .*static_config'):

        class StillPartialADN(PartialADN):
            checkpoint_layouts = ResNetADN.checkpoint_layouts

    class CompleteADN(PartialADN):
        checkpoint_layouts = ResNetADN.checkpoint_layouts
        static_config = ResNetADN.static_config
        stage_module_names = ResNetADN.stage_module_names


def test_the_mixin_must_come_before_the_upstream_network():
    with pytest.raises(TypeError, match=r'class UpstreamFirstADN\(AdaptiveDepthMixin, <upstream network>\)'):

        class UpstreamFirstADN(ResNet, AdaptiveDepthMixin):
            pass


def test_retype_refuses_a_class_that_does_not_extend_the_module():
    block = TransformerEncoderLayer(embed_dims=8, num_heads=2, feedforward_channels=16)
    assert type(retype(block, ADNTransformerEncoderLayer)) is ADNTransformerEncoderLayer
    assert block.norm1 is block.ln1 is block._modules['ln1']  # the norms are read by name
    with pytest.raises(TypeError, match='cannot take over a Linear'):
        retype(torch.nn.Linear(2, 2), ADNTransformerEncoderLayer)

