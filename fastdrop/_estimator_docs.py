"""The estimators' numpydoc, from one source: each parameter and attribute described once,
with the wording that differs between the classifier and the regressor given per estimator.
:func:`document` writes a class's Parameters in its constructor's order and fails at import
if a parameter has no entry, so the docs cannot drift from the signature."""
import inspect

# name -> (type and default, description); a description may be a dict {estimator: text}
PARAMETERS = {
    "hidden_layer_sizes": ("tuple of int, default=(100,)",
                           "The i-th entry is the number of units of the i-th hidden layer."),
    "activation": ('{"identity", "logistic", "tanh", "relu", "selu"}, default="relu"',
                   "The hidden units' activation. ReLU is fused into the dropout kernels; "
                   "the others take a pass of their own before dropout. \"selu\" (Klambauer "
                   "et al. 2017) goes with ``init=\"lecun\"``, standardized inputs and "
                   "``dropout_kind=\"alpha\"``."),
    "loss": ('{"squared_error", "poisson", "gaussian_nll"}, default="squared_error"',
             "An identity output with the squared error, an exponential output with the "
             "half Poisson deviance (counts and rates; y must be >= 0), or a mean and a log "
             "variance per target with the Gaussian negative log-likelihood (heteroscedastic "
             "noise, Kendall & Gal 2017: ``predict_distribution`` gives each sample's "
             "variance)."),
    "alpha": ("float, default=1e-4",
              "L2 penalty, scaled as scikit-learn does (``0.5 * alpha * ||W||^2 / "
              "batch_size``)."),
    "l1": ("float, default=0.0",
           "L1 penalty (``l1 * |W|_1 / batch_size``). Biases are never penalized."),
    "max_norm": ("float or None, default=None",
                 "Max-norm constraint (Srivastava et al. 2014): after each update, every "
                 "hidden unit's incoming weight vector is projected onto the ball of this "
                 "radius."),
    "dropout": ("float or sequence of float, default=0.0",
                "Drop probability of hidden units: one rate for all hidden layers or one per "
                "layer. ``p`` is the *drop* probability (Keras/PyTorch convention)."),
    "input_dropout": ("float, default=0.0",
                      "Drop probability of the input features (dense X only: a sparse X's "
                      "first layer is a sparse x dense product, and its masks would have to "
                      "cover every implicit zero)."),
    "dropout_mode": ('{"element", "batch"}, default="element"',
                     "\"element\": a fresh mask per example and unit. \"batch\": one unit mask "
                     "per mini-batch (Graham et al. 2015), so the matrix products run on the "
                     "kept units only."),
    "dropout_scale": ('{"inverted", "classic"}, default="inverted"',
                      "\"inverted\" scales kept units by 1/keep at train time; \"classic\" "
                      "trains unscaled and scales by keep at prediction (weight scaling)."),
    "dropout_kind": ('{"bernoulli", "gaussian", "alpha"}, default="bernoulli"',
                     "The noise that ``dropout`` and ``input_dropout`` rates stand for: "
                     "Bernoulli masks; multiplicative Gaussian noise of mean 1 and variance "
                     "p / (1 - p) (Srivastava et al. 2014, section 10); or alpha dropout, which "
                     "keeps a SELU network's mean and variance (Klambauer et al. 2017). "
                     "Gaussian and alpha noise are element mode and inverted only; both are "
                     "the identity at prediction."),
    "dropconnect": ("float in [0, 1), default=0.0",
                    "DropConnect (Wan et al. 2013): the drop rate of every layer's weights "
                    "(biases are never dropped), one mask per mini-batch shared by its rows so "
                    "each product stays one GEMM; kept weights are scaled by 1/keep, so "
                    "prediction uses the weights as they are."),
    "output_activation": ('{"softmax", "sigmoid"}, default="softmax"',
                          "Softmax with cross-entropy, or one sigmoid per class with binary "
                          "cross-entropy (the Keras experiment's configuration); "
                          "probabilities are normalized to sum to 1. A multilabel indicator "
                          "matrix y (n_samples, n_labels) of 0/1 always trains one sigmoid "
                          "per label, as scikit-learn's: ``predict`` returns the indicator "
                          "matrix, ``predict_proba`` each label's probability."),
    "class_weight": ('None, "balanced" or dict, default=None',
                     "Weights per class, multiplying ``sample_weight``: \"balanced\" weighs "
                     "each class by ``n_samples / (n_classes * its count)`` (not with "
                     "``partial_fit``, which sees one batch); a dict maps classes to weights "
                     "(others 1)."),
    "solver": ('{"adam", "sgd", "lbfgs"}, default="adam"',
               "\"lbfgs\": scipy's L-BFGS-B on the full-batch loss, as scikit-learn's (for "
               "small data sets); it takes no dropout, l1 or max_norm (an error names the one "
               "given), no early stopping and no partial_fit."),
    "batch_size": ('int or "auto", default="auto"',
                   "Rows per mini-batch; \"auto\" is ``min(200, n_samples)``. Larger than "
                   "the data: a warning, and the whole set."),
    "learning_rate": ('{"constant", "invscaling", "adaptive"}, default="constant"',
                      "SGD only: \"invscaling\" sets the rate to ``learning_rate_init / "
                      "(t_ + 1) ** power_t`` after each epoch; \"adaptive\" divides it by 5 "
                      "each time the stopping rule fires."),
    "learning_rate_init": ("float, default=0.001",
                           "The initial step size of \"sgd\" and \"adam\" (all of it for a "
                           "constant schedule)."),
    "power_t": ("float, default=0.5", "The exponent of \"invscaling\"."),
    "max_iter": ("int, default=200",
                 "Maximum number of epochs (of L-BFGS iterations with \"lbfgs\")."),
    "shuffle": ("bool, default=True",
                "Whether each epoch visits the rows in a new random order (sgd, adam)."),
    "random_state": ("int, RandomState instance or None, default=None",
                     "Initial weights, shuffling, the validation split and every dropout "
                     "mask."),
    "tol": ("float, default=1e-4",
            "The stopping rule's tolerance: training stops when the training loss (or, with "
            "early stopping, the watched validation value) has not improved by at least tol "
            "for ``n_iter_no_change`` epochs; L-BFGS's gradient tolerance."),
    "verbose": ("bool, default=False", "Print the training loss after each epoch."),
    "warm_start": ("bool, default=False",
                   "``fit`` continues the fitted network's weights. Every parameter counts "
                   "as it is set then: a changed rate, noise kind, activation, mode, scale or "
                   "dtype rebuilds the network around the learned weights, the optimizer is "
                   "rebuilt (as scikit-learn's), and new ``hidden_layer_sizes`` are an "
                   "error; ``init`` draws a new network only."),
    "momentum": ("float, default=0.9", "SGD's momentum, in [0, 1]."),
    "nesterovs_momentum": ("bool, default=True",
                           "SGD: Nesterov's momentum instead of the classical one."),
    "early_stopping": ("bool, default=False", {
        "classifier": "Hold out ``validation_fraction`` (stratified), or use ``fit``'s "
                      "``X_val``/``y_val``; stop when ``early_stopping_metric`` on it stalls "
                      "and restore the best epoch's weights. A loss that diverges ends the fit "
                      "with those weights and a DivergenceWarning, as scikit-learn's keeps "
                      "them (without early stopping it is a FloatingPointError).",
        "regressor": "Hold out ``validation_fraction``, or use ``fit``'s ``X_val``/"
                     "``y_val``; stop when ``early_stopping_metric`` on it stalls and restore "
                     "the best epoch's weights. A loss that diverges ends the fit with those "
                     "weights and a DivergenceWarning, as scikit-learn's keeps them (without "
                     "early stopping it is a FloatingPointError)."}),
    "validation_fraction": ("float, default=0.1",
                            "The share of the training rows held out for early stopping, in "
                            "(0, 1)."),
    "early_stopping_metric": ({"classifier": '{"accuracy", "loss"}, default="accuracy"',
                               "regressor": '{"r2", "loss"}, default="r2"'}, {
        "classifier": "What early stopping watches: validation accuracy (scikit-learn's "
                      "rule), or validation log-loss, which still moves when the accuracy of "
                      "a small validation set does not.",
        "regressor": "What early stopping watches: validation R^2 (scikit-learn's rule), or "
                     "the validation loss."}),
    "beta_1": ("float, default=0.9",
               "Adam's decay rate of the first-moment estimates, in [0, 1)."),
    "beta_2": ("float, default=0.999",
               "Adam's decay rate of the second-moment estimates, in [0, 1)."),
    "epsilon": ("float, default=1e-8", "Adam's term for numerical stability."),
    "n_iter_no_change": ("int or np.inf, default=10",
                         "Epochs without improvement before the stopping rule fires; "
                         "``np.inf`` never."),
    "max_fun": ("int, default=15000", "\"lbfgs\" only: the most loss evaluations."),
    "init": ('{"glorot", "he", "lecun"}, default="glorot"',
             "scikit-learn's Glorot-uniform, He-normal (ReLU), or LeCun-normal (SELU)."),
    "dtype": ('{"float32", "float64"} or None, default="float32"',
              "The network's floating-point type: its weights, activations and kernels. "
              "float32 (the default) is the fast choice whatever the input's dtype "
              "(docs/bench/dtype-2core-amd/: a float64 epoch took 1.7-1.8x as long); "
              "None is scikit-learn's rule: the input's dtype (float32 stays "
              "float32, anything else becomes float64) at the fit that builds the network, "
              "kept by warm starts and partial_fit; the regressor's predictions then come "
              "in that dtype, as scikit-learn's. With a dtype set, predictions and "
              "probabilities are float64."),
    "n_threads": ("int or None, default=None",
                  "Threads for the fit or prediction (None: all usable cores, honouring "
                  "threadpoolctl limits), resolved once per call. OpenBLAS's jobs then run on "
                  "fastdrop's OpenMP pool beside the element-wise kernels, which use the same "
                  "threads; where that pool cannot be installed, BLAS gets the threads and "
                  "the kernels run on one, so two pools never fan out at once."),
}

_SCORE = {"classifier": ("accuracy", "val_accuracy"), "regressor": ("R^2", "val_r2")}

# name -> (type, description); {estimator} / {score} / {score_key} are filled per estimator
ATTRIBUTES = {
    "classes_": ("ndarray of shape (n_classes,)",
                 "The class labels (multilabel: the label columns, 0 .. n_labels - 1)."),
    "n_features_in_": ("int", "Number of features seen during fit."),
    "feature_names_in_": ("ndarray of str",
                          "Feature names seen during fit (when X had string column names)."),
    "coefs_": ("list of ndarray",
               "Per layer, the (fan_in, fan_out) weight matrix (a view on the network's "
               "unit-major weights)."),
    "intercepts_": ("list of ndarray", "Per layer, the bias vector."),
    "n_layers_": ("int", "Layers, input and output included."),
    "n_outputs_": ("int", "Outputs: classes or labels, or targets."),
    "noise_precision_": ("ndarray of shape (n_targets,)",
                         "The observation noise precision tau per target that ``fit_noise`` "
                         "chose on held-out data (set by ``fit_noise`` only)."),
    "temperature_": ("float",
                     "The temperature that ``fit_temperature`` chose on held-out data (set "
                     "by ``fit_temperature`` only); ``predict_proba(X, temperature="
                     "est.temperature_)`` applies it."),
    "out_activation_": ("str", "The output layer's activation."),
    "loss_": ("float", "The last epoch's training loss (with penalties, on dropped-out "
                       "networks)."),
    "loss_curve_": ("list of float", "Training loss per epoch."),
    "best_loss_": ("float or None",
                   "The lowest training loss (None while early stopping watches the "
                   "validation set)."),
    "validation_scores_": ("list of float or None",
                           "Validation {score} per epoch when early stopping is on."),
    "best_validation_score_": ("float or None", "The best of ``validation_scores_``."),
    "n_iter_": ("int", "Epochs run by the last ``fit`` (1 after ``partial_fit``), as in "
                       "scikit-learn: a ``warm_start`` fit starts counting again; "
                       "``loss_curve_`` and ``history_`` go on."),
    "t_": ("int", "Training samples seen."),
    "stopped_epoch_": ("int or None",
                       "The epoch at which the stopping rule ended training (None: it never "
                       "fired)."),
    "max_norm_clipped_": ("float or None",
                          "With ``max_norm``: the fraction of (hidden unit, update) pairs "
                          "the constraint clipped."),
    "history_": ("dict of lists",
                 "Per epoch: ``epoch``, ``train_loss``, ``val_loss``, ``{score_key}`` (the "
                 "validation {score}; NaN without a validation set), ``learning_rate``, "
                 "``time`` (wall seconds of the epoch), and its split: ``time_forward`` "
                 "(batch copies included), ``time_backward`` (their sum "
                 "``time_forward_backward``), ``time_update`` (optimizer step, max-norm), "
                 "``time_validation``. ``pandas.DataFrame(est.history_)`` makes a table."),
}
_NOT_IN = {"regressor": {"classes_", "temperature_"}, "classifier": {"noise_precision_"}}


def _wrap(text, indent, width=92):
    words, lines, line = text.split(), [], indent
    for word in words:
        if len(line) + len(word) + 1 > width and line.strip():
            lines.append(line.rstrip())
            line = indent
        line += word + " "
    lines.append(line.rstrip())
    return "\n".join(lines)


def _pick(entry, estimator):
    return entry[estimator] if isinstance(entry, dict) else entry


def document(cls, estimator, header):
    """``cls.__doc__``: ``header``, then Parameters in the constructor's order and
    Attributes, for ``estimator`` "classifier" or "regressor"."""
    score, score_key = _SCORE[estimator]
    names = [n for n in inspect.signature(cls.__init__).parameters if n != "self"]
    missing = [n for n in names if n not in PARAMETERS]
    if missing:
        raise KeyError(f"{cls.__name__}: no documentation for parameter(s) {missing}")
    parts = [header.rstrip(), "", "    Parameters", "    ----------"]
    for name in names:
        kind, text = (_pick(e, estimator) for e in PARAMETERS[name])
        parts += [f"    {name} : {kind}", _wrap(text, " " * 8)]
    parts += ["", "    Attributes", "    ----------"]
    for name, (kind, text) in ATTRIBUTES.items():
        if name in _NOT_IN.get(estimator, ()):
            continue
        text = text.format(score=score, score_key=score_key)
        parts += [f"    {name} : {kind}", _wrap(text, " " * 8)]
    cls.__doc__ = "\n".join(parts) + "\n    "
    return cls
