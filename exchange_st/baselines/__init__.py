"""Baselines of Tables 1 and 2: AdaIN [11], Gatys et al. [6] and WCT [21] on the shared VGG."""
