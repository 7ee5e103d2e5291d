"""fastdrop: fast CPU dropout with counter-based masks.

Public API (everything else is private):

* masks and noise records: :func:`bernoulli_mask`, :class:`DropoutMask`,
  :class:`GaussianNoise` (what :func:`gaussian_dropout` returns for its backward)
* fused passes: :func:`dropout`, :func:`dropout_backward`, :func:`dropout_inference`,
  :func:`relu_dropout`, :func:`relu_dropout_backward`
* layer: :class:`Dropout`
* the rest of the family: :func:`gaussian_dropout`, :func:`alpha_dropout`,
  :func:`dropconnect_linear` (each with its ``_backward``), :class:`GaussianDropout`,
  :class:`AlphaDropout`, :class:`DropConnectLinear`
* network and estimators: :class:`MLP`, :class:`MLPClassifier`, :class:`MLPRegressor`
  (``predict_uncertainty`` returns an ``estimator.Uncertainty``, the regressor's
  ``predict_distribution`` a :class:`Predictive`), :class:`DeepEnsemble` of either
* scores of predictive distributions: :mod:`fastdrop.scores`
* threads: :func:`get_num_threads`, :func:`set_num_threads`
* build facts: :func:`build_info`
"""
from ._info import build_info
from ._version import __version__
from ._threading import get_num_threads, set_num_threads
from .ensemble import DeepEnsemble
from .estimator import MLPClassifier, MLPRegressor, Predictive
from .network import MLP
from ._dropout import (Dropout, DropoutMask, bernoulli_mask, dropout, dropout_backward,
                      dropout_inference, relu_dropout, relu_dropout_backward)
from ._noise import (AlphaDropout, DropConnectLinear, GaussianDropout, GaussianNoise,
                     alpha_dropout, alpha_dropout_backward, dropconnect_linear,
                     dropconnect_linear_backward, gaussian_dropout, gaussian_dropout_backward)


__all__ = ["MLP", "MLPClassifier", "MLPRegressor", "DeepEnsemble", "Predictive",
           "Dropout", "DropoutMask", "bernoulli_mask",
           "build_info", "dropout", "dropout_backward", "dropout_inference", "get_num_threads",
           "relu_dropout", "relu_dropout_backward", "set_num_threads", "__version__",
           "AlphaDropout", "DropConnectLinear", "GaussianDropout", "GaussianNoise",
           "alpha_dropout", "alpha_dropout_backward", "dropconnect_linear",
           "dropconnect_linear_backward", "gaussian_dropout", "gaussian_dropout_backward"]
