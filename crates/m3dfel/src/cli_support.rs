//! Helpers shared by the command-line programs (`m3dfel`, `trainer`).

/// Groups the digits of a count by thousands: 46823384 → "46,823,384".
///
/// ```
/// assert_eq!(m3dfel::cli_support::group_thousands(738576), "738,576");
/// ```
pub fn group_thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Compute backends report an unusable device (no CUDA driver, no GPU adapter) by panicking,
/// often on a worker thread. Turn that into one readable line and a non-zero exit.
pub fn report_panics_as_errors() {
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("unknown failure");
        // The first sentence, without the long lists some backends append after " - ".
        let first_sentence = message.split(". ").next().and_then(|s| s.split(" - ").next()).unwrap_or(message);
        eprintln!(
            "error: the compute backend failed: {first_sentence} \
             (try `--device cpu`; set RUST_BACKTRACE=1 and report it if the device should work)"
        );
        if std::env::var_os("RUST_BACKTRACE").is_some() {
            eprintln!("{}", std::backtrace::Backtrace::force_capture());
        }
        std::process::exit(3);
    }));
}
