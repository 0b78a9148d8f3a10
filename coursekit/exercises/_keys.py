"""Salted hashes of the choice answers and their sealed explanations, made with ``coursekit.grading.choice_digest`` and ``coursekit.grading.seal``."""
CHOICE_KEYS = {
    '01.which_approach': (
        'e3a127a83a0dc591e4d9560f7ee451baeec574586ea0b581fcc5eb6a24343776',
        'F8R9tkq/q9Xi4eruYmFg/X9U4qFYCnhsMXsEHxx4lznsP0J3AMaYsQNSBruKlgq7XOaGTFy+M+Idu9ATJuh0DsHvPdPEMc5V'
        'VyDRKzv4ir3QU67hMjTm6TCZ9MC+rlR0Of9ub83Yhjdhyn3b1q1ntdQNFzDA5YcifOAlXQ/8Xbc47d27N1CBazngWWrxItXp'
        'zgLXGowGTaksE2ZbYYioi+JmGPa58HTTK7dpCp07DMZdeA/NC4cn0gm0+Yh2Qk741+9ySVASnPH/CO60DmPIlgSzOP2NumXU'
        '9DeKStYjwnTI2aB8dtvSrSLpHH2cJb25r6SgeNhyzlwZAmkCTrRU0bHQP2mrrSVzJNTE0LhrmPNGCH/pPiXvFRfVo4N6hG8N'
        'mDt84Cnp/gkrIePenlaOdGsVaVmslemqWF6odD2d1koP+Z+b1ModCQrL8/qgED2Yy6m7KFLePg6F0xeKQDR9eqExrKfKZDbb'
        '1buUDXySKBfzutQnbmGon2ZAAjZY4JMMPzSn0wo+j9TvRO4BkHYK5bKRpDBn8p6muD83EwlIkk62pl8jnrm9NYUxG6BwBLB8'
        'j5BPUOnn0V6pdhurVNCGcpuUdy49Y4+r6xaDTSI5JrvqH+Qpt6M9RAfti2zntH/l0oEpRULu+ZSD++Q90DbncfISA5ImadIv'
        'QJQDSadx/KDRdg+d2D26WQ=='),
    '01.not_to_fine_tune': (
        '2f96f45e1c00b6a33239f0c56390c44e95dadca9b5eb1bc7cf30c3976a234e31',
        'NdysM1KVcu6WiS0QW3+XcFYpPU9fYBYin/LdUKypxQ4Fom3+o5pR9UzWA2R6bQoRFwBECcG2Xq0wd580anUwvLs+Qll4gMuc'
        'OORFZpSa2swkBO/g7JNPPq8UiW155qHRQc/gU8k0IFmXbVaFcNZ9erzAIOHs2lTWI6cKcLP2pTw0iq25ByhYFNnaOlfqji5F'
        '4G2UycfJfjkYXCLgPk5T/R2pyTdE/9fZU4QCRBXbG8CjrOQeD/FQUklTPsM66db1rbzj7nJ3EeSzQgZKncigvXk5Q2ZpThZp'
        'bn3R6IcsTv1LY3r5y8NBvHfXawbqGnNTKDancYxcQQ5dBCL4gWQ2jc+wsztzDvEG8gYB4atSqITbG6FmWopXTfXfAvp2NmW3'
        'NutO8btTKT3Dei8cB75EOtbf0J2VNkZXR15DGB2CSEGnBWDrhOfEN4cK8lAoFbMBUOwrfF4dB4Em417Wj55BWrBvQc5rHkUi'
        'K6bKMAFdNO+FYkfowonHb8JlWYPmGorvU0BZwifxryqhtwlTLC++tq6UK6i/tTLD'),
    '02.fits_a100_70b': (
        '7ba8e115374807afadfc3757c56b565d59f73fa19c195eff7392e8ecbb052df1',
        'sS9kShRIr1LUB7kSzX24Y2Ar5NKPl7t9Y4C4LZ/5gL/nHiT/SzRRjCHXu+t5/8WlFTXReaMGLPCXR6rdO8Ge7vj/uHOklMEa'
        'QurQEjhucnTMA/0gki3BbbTRTZhtaxC4TjmNytjXkplfjnjvDUKs3uDMktWB5S5wsx6FAbN2SCd9LXZydrTYWmlkvcXF6QS4'
        'I3TQ5Jx6MQVD6XxofHqk0OxlC/cHSSoZCSQJrYwibjkadMPAFoSJ4y0K/AakzO7STvYeO2zbk/arC5bgP9sDrA2IpAPC71f8'
        'FD1e2sSY3Z5pgBvcArUVgqY+s3klqfDhUay+E0HAzLMEfH6gM3plnqnqgUfME67N4+Om+abGt93GhPnhzDL/UAtcV/vidTED'
        'iR7WTP/0V2nZzQ=='),
    '03.forgetting_signal': (
        '0f5bcaa184f7d676eb404d47d1039f043325bd00b2d3204e3a875744810df065',
        'tRb+Wy0JZidZTq8kkxpApPxptsBpaebbvUrHPZh4a6GJC7zSo6iTnZ8rBLc53KzhkADNghoNF4zZ2apOS9kPY4q1YPcbDiN9'
        'Eu7silHbmFt2BYRcSjBnBg1jCKLcTKUvGdweroInnE9zMddlPIYyokZ4Je4+dI9V31q0UrsubPWrmsW7vt9oBeGF7rqsZK7b'
        'i7SfBYMJKPc9liPvhhTWEnn7qfBnYQNO90DDAA7B7vCrROzK8I4aLds5HdDzUSLMZI98IGaJrBtxS5lA9lNSMwH9WjiOjyCa'
        'lKwzBrUW0MC58SdTA0KaOP9G/9aH66I8Mw=='),
    '04.why_zero_b': (
        '3868fa59ae9d5fb9136d8614d288926c67fac0a6c698c29429d71d9ea0d2059e',
        'EY9dyHtQmo3qoOghxnY+ju54wyUK4iwB+QLD/CWKZzE5yPceeDP8vVagkZIzTfOmOSYta8GKrdtriQBU+m6fG6R8sFCgzzxu'
        'BgB4oeycHNdaiwUYqIfU20VMahRLkH3KgBlMEzxDUCBBvuT87YOk5jF98W/EEQkxvN4uAGn9V5ewRY+C8Rj5eJypLwYn4IdG'
        'RxNPqQOWPCOflHUxgy11FQcDibraORFgVMT9uajnhlmLGoXP6IgOW93uPgM9/gnYAHWC1lxGCi4='),
    '05.adapter_precision': (
        'c3008dd5655094949a6be0b0204d35f1db776336024d450382811ca65e4d1390',
        'W/rvHsKeyI/vEynD16SeWED/Wwc73s8qsbaspRU2XuWfnoAMhaKp14TXbOCGz9VYNFFPanmNxvvRjamctTpPZsXdAZn4FVYW'
        'lPPupWfnczYMehr988PJVki4lnQcsUIGkY1sC/qdF5/hTEV6KjhvWW6WLMq8lcC4VmBflxrN/UDLdC99L2QLJXtIUEfG/n98'
        'xvm8UIuMmddThHWyuvXDcVhDox90+6jcfp2pXimex7LphxQCwOsKjkWxOp5xXimj07Gq0ofDAb1zdZH/g6GLBtB0tZpMo7Xq'
        'oF0FiCjCf3/BoO9m8OHGTdohhLRGRxST/a0EPJ5cOZ+Bi11F1Os2HuVRVy+nq5zBomva3XxFo+Q='),
    '06.method_fits_gpu': (
        '1634050069102c3033666469c7d58cd67174e75ee3663c0540b94d3edadf2dfc',
        'SLdm7un+JI/7qz4idBCBST0jM2Oy8rnVG4O2smELMmt4yVhDarNYP76+PZAFh3l1b90d0gI1oqOKYdbWh3xxyNoo3edsem17'
        'CXuFlezWC24rSLSl0XxnijVeaWPWvE9Gf2+8gph6TneuRtPuScucRgQxX+/HJRRW2WiHmkHL46a2TtNVDbD6ApLFnf3M/b2D'
        'ECluzx+vwIlYelHmhT1Nl9PtO2Bg45aPTNE8fFD/EAjycJ+UgYAPnSuJe3OYiv6J2B3h1u+6WjYO9REWPsTRI3XaFDZDdUyU'
        'AcHEsRidD/DImJbJtGFQvefuPreI+luHmSyrf6lsdmoCHQkIOxJrscoGMxN2ziKEPs24jmHqsOhdnzOfjPmqqoaJ/TJ0jdUs'
        '5c8PkWrDKnxyc2FnpYEz+2dbaMU0ZjG1Omn4k3qnW6JkuwftkVHpy+N086VK5WrDm6liRggcKzXR1o4xQlvy7J91VnbMxiEg'
        'NqDra+Acoz9F1EfS3KH9UDdJcgkNi8xNkUGKDFjZru2G9RsVlOBJmx0+Fm5Y4BOWr6yiCJatOrSGe43Vkt4OTAe8oF/G1/Kl'
        '+jQDooI9CK9U0WJMt1bYzW7lLUuSphqi'),
}
