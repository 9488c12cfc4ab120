//! Shared by the integration tests.

/// Every model of the zoo, as named in `models/`.
pub const ZOO: &[&str] = &[
    "resnet20",
    "resnet32",
    "resnet44",
    "resnet56",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "wrn40_4",
    "mobilenet_v1",
    "mobilenet_v2",
    "mobilenet_v3_large",
    "mobilenet_v3_small",
    "efficientnet_b0",
    "mnasnet",
    "shufflenet_v2",
    "regnetx_400mf",
    "regnety_400mf",
];
