"""The papers that introduced the activations (shared where one paper introduced several)."""

from actlab.catalog.spec import Reference

NAIR_HINTON_2010 = Reference(
    "Nair, V. & Hinton, G. E.", "Rectified Linear Units Improve Restricted Boltzmann Machines. ICML", 2010,
    "https://www.cs.toronto.edu/~hinton/absps/reluICML.pdf",
)
GLOROT_2011 = Reference(
    "Glorot, X., Bordes, A. & Bengio, Y.", "Deep Sparse Rectifier Neural Networks. AISTATS", 2011,
    "https://proceedings.mlr.press/v15/glorot11a.html",
)
MAAS_2013 = Reference(
    "Maas, A. L., Hannun, A. Y. & Ng, A. Y.",
    "Rectifier Nonlinearities Improve Neural Network Acoustic Models. ICML Workshop", 2013,
)
HE_2015 = Reference(
    "He, K., Zhang, X., Ren, S. & Sun, J.",
    "Delving Deep into Rectifiers: Surpassing Human-Level Performance on ImageNet Classification", 2015,
    "https://arxiv.org/abs/1502.01852",
)
XU_2015 = Reference(
    "Xu, B., Wang, N., Chen, T. & Li, M.", "Empirical Evaluation of Rectified Activations in Convolutional Network",
    2015, "https://arxiv.org/abs/1505.00853",
)
CLEVERT_2015 = Reference(
    "Clevert, D.-A., Unterthiner, T. & Hochreiter, S.",
    "Fast and Accurate Deep Network Learning by Exponential Linear Units (ELUs)", 2015,
    "https://arxiv.org/abs/1511.07289",
)
BARRON_2017 = Reference(
    "Barron, J. T.", "Continuously Differentiable Exponential Linear Units", 2017, "https://arxiv.org/abs/1704.07483"
)
KLAMBAUER_2017 = Reference(
    "Klambauer, G., Unterthiner, T., Mayr, A. & Hochreiter, S.", "Self-Normalizing Neural Networks. NeurIPS", 2017,
    "https://arxiv.org/abs/1706.02515",
)
HENDRYCKS_2016 = Reference(
    "Hendrycks, D. & Gimpel, K.", "Gaussian Error Linear Units (GELUs)", 2016, "https://arxiv.org/abs/1606.08415"
)
RAMACHANDRAN_2017 = Reference(
    "Ramachandran, P., Zoph, B. & Le, Q. V.", "Searching for Activation Functions", 2017,
    "https://arxiv.org/abs/1710.05941",
)
ELFWING_2017 = Reference(
    "Elfwing, S., Uchibe, E. & Doya, K.",
    "Sigmoid-Weighted Linear Units for Neural Network Function Approximation in Reinforcement Learning", 2017,
    "https://arxiv.org/abs/1702.03118",
)
MISRA_2019 = Reference(
    "Misra, D.", "Mish: A Self Regularized Non-Monotonic Activation Function", 2019, "https://arxiv.org/abs/1908.08681"
)
DUGAS_2000 = Reference(
    "Dugas, C., Bengio, Y., Belisle, F., Nadeau, C. & Garcia, R.",
    "Incorporating Second-Order Functional Knowledge for Better Option Pricing. NeurIPS", 2000,
)
KONDA_2014 = Reference(
    "Konda, K., Memisevic, R. & Krueger, D.", "Zero-bias autoencoders and the benefits of co-adapting features", 2014,
    "https://arxiv.org/abs/1402.3337",
)
KRIZHEVSKY_2010 = Reference(
    "Krizhevsky, A.", "Convolutional Deep Belief Networks on CIFAR-10 (technical report)", 2010,
)
HOWARD_2019 = Reference(
    "Howard, A. et al.", "Searching for MobileNetV3. ICCV", 2019, "https://arxiv.org/abs/1905.02244"
)
COURBARIAUX_2015 = Reference(
    "Courbariaux, M., Bengio, Y. & David, J.-P.",
    "BinaryConnect: Training Deep Neural Networks with binary weights during propagations. NeurIPS", 2015,
    "https://arxiv.org/abs/1511.00363",
)
TURIAN_2009 = Reference(
    "Turian, J., Bergstra, J. & Bengio, Y.", "Quadratic Features and Deep Architectures for Chunking. NAACL", 2009,
)
SO_2021 = Reference(
    "So, D. R. et al.", "Primer: Searching for Efficient Transformers for Language Modeling", 2021,
    "https://arxiv.org/abs/2109.08668",
)
RUMELHART_1986 = Reference(
    "Rumelhart, D. E., Hinton, G. E. & Williams, R. J.", "Learning representations by back-propagating errors. Nature",
    1986,
)
LECUN_1998 = Reference(
    "LeCun, Y., Bottou, L., Orr, G. B. & Mueller, K.-R.", "Efficient BackProp. Neural Networks: Tricks of the Trade",
    1998,
)
BRIDLE_1990 = Reference(
    "Bridle, J. S.", "Probabilistic Interpretation of Feedforward Classification Network Outputs", 1990,
)
DAUPHIN_2017 = Reference(
    "Dauphin, Y. N., Fan, A., Auli, M. & Grangier, D.", "Language Modeling with Gated Convolutional Networks. ICML",
    2017, "https://arxiv.org/abs/1612.08083",
)
SHAZEER_2020 = Reference(
    "Shazeer, N.", "GLU Variants Improve Transformer", 2020, "https://arxiv.org/abs/2002.05202"
)
