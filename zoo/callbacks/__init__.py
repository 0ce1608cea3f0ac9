"""Lightning callbacks of zoo; import the module you need (configs name them by module path).

* :class:`~zoo.callbacks.loss_feedback.LossFeedback` — per-sample losses to the datamodule's sampler
  (through the :class:`~zoo.datamodules.base.SamplerFeedback` hook)
* :class:`~zoo.callbacks.visual_logging.VisualLogging` — predictions coloured by the validation signal

The NaN/inf guard is not a callback: every model checks its output and loss in the training step
(:meth:`zoo.models.base.ZooModule.guard`).
"""
