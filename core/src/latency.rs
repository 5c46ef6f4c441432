//! The names and buckets of the latency histograms every enforcement point records (the
//! recorder itself is the binaries': `stepup_runtime::metrics`).

/// The decision latency histogram of every enforcement point, by `point` and `outcome`.
pub const DECISION_DURATION: &str = "stepup_decision_duration_seconds";

/// Buckets of [`DECISION_DURATION`]: they resolve 5 µs (a cached token and completion) to
/// 50 ms (a slow session read), then Envoy's 2 s timeout.
pub const DECISION_DURATION_BUCKETS: [f64; 16] = [
    0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005,
    0.01, 0.025, 0.05, 0.1, 0.5, 2.0,
];

/// The step-up API's latency histogram, by `endpoint`.
pub const API_DURATION: &str = "stepup_api_request_duration_seconds";

/// Buckets of [`API_DURATION`]: a table write takes milliseconds, a Cognito sign-in
/// hundreds of them.
pub const API_DURATION_BUCKETS: [f64; 10] =
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];
