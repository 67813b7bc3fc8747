"""The Feature Exchange block of Sec. 3.2 (Fig. 4) and its residual message passing unit."""

import keras


@keras.saving.register_keras_serializable(package="exchange_st")
class ResidualMessagePassing(keras.layers.Layer):
    """Residual Message Passing unit (Sec. 3.2, Fig. 4b).

    Four learnable 256 x 256 weights: the two inputs are weighted by the first
    two and passed through ReLU, the results are summed into a message `m`,
    and two further weights give the attention gates of the two residuals:

        m   = relu(W1 a) + relu(W2 b)
        r_a = sigmoid(W3 m) * m,   r_b = sigmoid(W4 m) * m

    The gate non-linearity is not named in the paper; a sigmoid is what
    "attentional gating ... determine how much information to output" reads
    as. Gate biases start at `gate_bias_init` (default -5, sigmoid ~ 0.007)
    so that a fresh block is nearly the identity, which is the paper's claim
    that blocks chain "without breaking its initial behavior".

    Args:
      units: feature size (256 in the paper).
      gate_bias_init: initial bias of the two gating layers.

    Call arguments:
      inputs: pair `(a, b)` of `[B, units]`.

    Returns:
      Pair of residuals `(r_a, r_b)`, each `[B, units]`.
    """

    def __init__(self, units=256, gate_bias_init=-5.0, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.gate_bias_init = gate_bias_init
        dense = dict(units=units, dtype=self.dtype_policy)
        gate = dict(
            dense,
            activation="sigmoid",
            bias_initializer=keras.initializers.Constant(gate_bias_init),
        )
        self.w1 = keras.layers.Dense(activation="relu", name="w1", **dense)
        self.w2 = keras.layers.Dense(activation="relu", name="w2", **dense)
        self.w3 = keras.layers.Dense(name="w3_gate", **gate)
        self.w4 = keras.layers.Dense(name="w4_gate", **gate)

    def build(self, input_shape):
        shape = input_shape[0]
        for layer in (self.w1, self.w2):
            layer.build(shape)
        for layer in (self.w3, self.w4):
            layer.build(shape[:-1] + (self.units,))
        self.built = True

    def call(self, inputs):
        a, b = inputs
        message = self.w1(a) + self.w2(b)
        return self.w3(message) * message, self.w4(message) * message

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units, "gate_bias_init": self.gate_bias_init})
        return config


@keras.saving.register_keras_serializable(package="exchange_st")
class FeatureExchangeBlock(keras.layers.Layer):
    """Feature Exchange block (Sec. 3.2, Fig. 4a).

    `f_com` meets each unique feature in its own residual message passing unit
    and is updated with both units' residuals; each unique feature is updated
    with the residual its unit returns for it:

        (r_uni_c, r_com_c) = RMP_c(f_uni_c, f_com)
        (r_com_s, r_uni_s) = RMP_s(f_com, f_uni_s)
        f'_com = f_com + r_com_c + r_com_s
        f'_uni_c = f_uni_c + r_uni_c,   f'_uni_s = f_uni_s + r_uni_s

    Args:
      units: feature size (256).
      gate_bias_init: passed to both units.

    Call arguments:
      inputs: triple `(f_com, f_uni_c, f_uni_s)`, each `[B, units]`.

    Returns:
      Refined triple `(f'_com, f'_uni_c, f'_uni_s)`, each `[B, units]`.
    """

    def __init__(self, units=256, gate_bias_init=-5.0, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.gate_bias_init = gate_bias_init
        self.rmp_c = ResidualMessagePassing(
            units, gate_bias_init, name="rmp_c", dtype=self.dtype_policy
        )
        self.rmp_s = ResidualMessagePassing(
            units, gate_bias_init, name="rmp_s", dtype=self.dtype_policy
        )

    def build(self, input_shape):
        shape = input_shape[0]
        self.rmp_c.build((shape, shape))
        self.rmp_s.build((shape, shape))
        self.built = True

    def call(self, inputs):
        f_com, f_uni_c, f_uni_s = inputs
        r_uni_c, r_com_c = self.rmp_c((f_uni_c, f_com))
        r_com_s, r_uni_s = self.rmp_s((f_com, f_uni_s))
        return f_com + r_com_c + r_com_s, f_uni_c + r_uni_c, f_uni_s + r_uni_s

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units, "gate_bias_init": self.gate_bias_init})
        return config
