//! [`AlertRule`]: how one requirement alerts (severity, FAILAFTER, RECOVERAFTER).

use serde::{Deserialize, Serialize};

/// How loud an alert is: the requirement options `SEVERITYWARNING` / `SEVERITYCRITICAL`,
/// parsed by `dwmon_core::Requirement::parse` (re-exported here).
pub use dwmon_core::Severity;

/// The alerting options of one requirement line.
///
/// The requirement grammar spells them `SEVERITYWARNING` / `SEVERITYCRITICAL`,
/// `FAILAFTER<n>` and `RECOVERAFTER<n>`, and [`dwmon_core::Requirement`] carries them
/// ([`AlertRule::from_requirement`]); [`AlertRule::from_requirement_text`] reads them from a
/// check record's canonical requirement text with the same parser.
///
/// ```
/// use dwmon_alert::{AlertRule, Severity};
/// let rule = AlertRule::from_requirement_text(
///     "CHECKHOURS0-23 CHECKMINUTES* WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS180 SEVERITYWARNING FAILAFTER3",
/// );
/// assert_eq!(rule, AlertRule { severity: Severity::Warning, fail_after: 3, recover_after: 1 });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AlertRule {
    /// Severity of the alert (default critical).
    pub severity: Severity,
    /// Fire on the n-th consecutive BAD check (default 1; 0 acts as 1).
    pub fail_after: u32,
    /// Resolve on the n-th consecutive GOOD check (default 1; 0 acts as 1).
    pub recover_after: u32,
}

impl Default for AlertRule {
    fn default() -> Self {
        AlertRule {
            severity: Severity::Critical,
            fail_after: 1,
            recover_after: 1,
        }
    }
}

impl AlertRule {
    /// The alert options of a parsed requirement.
    pub fn from_requirement(requirement: &dwmon_core::Requirement) -> AlertRule {
        AlertRule {
            severity: requirement.severity,
            fail_after: requirement.fail_after,
            recover_after: requirement.recover_after,
        }
    }

    /// Reads the alert options from a requirement's text (a check record's `requirement`).
    /// A whole requirement line is parsed with `dwmon_core::Requirement::parse`, so both
    /// always agree; for a fragment that is not a valid line, the tokens `SEVERITYWARNING`,
    /// `SEVERITYCRITICAL`, `FAILAFTER<n>` and `RECOVERAFTER<n>` are picked out, other tokens
    /// are ignored, and missing or malformed options keep their defaults.
    pub fn from_requirement_text(text: &str) -> AlertRule {
        if let Ok(requirement) = dwmon_core::Requirement::parse(text) {
            return AlertRule::from_requirement(&requirement);
        }
        let mut rule = AlertRule::default();
        for token in text.split_whitespace() {
            match token {
                "SEVERITYWARNING" => rule.severity = Severity::Warning,
                "SEVERITYCRITICAL" => rule.severity = Severity::Critical,
                _ => {
                    if let Some(n) = token.strip_prefix("FAILAFTER").and_then(positive) {
                        rule.fail_after = n;
                    } else if let Some(n) = token.strip_prefix("RECOVERAFTER").and_then(positive) {
                        rule.recover_after = n;
                    }
                }
            }
        }
        rule
    }

    /// `fail_after`, at least 1.
    pub fn fail_threshold(&self) -> u32 {
        self.fail_after.max(1)
    }

    /// `recover_after`, at least 1.
    pub fn recover_threshold(&self) -> u32 {
        self.recover_after.max(1)
    }
}

fn positive(digits: &str) -> Option<u32> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits
        .parse()
        .ok()
        .filter(|n| (1..=dwmon_core::requirement::MAX_ALERT_AFTER).contains(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_when_no_option_is_given() {
        let rule = AlertRule::from_requirement_text("CHECKHOURS9-9 CHECKMINUTES*/20 WEEKDAYS");
        assert_eq!(rule, AlertRule::default());
        assert_eq!(rule.severity, Severity::Critical);
    }

    #[test]
    fn reads_every_option() {
        let rule =
            AlertRule::from_requirement_text("MINNUM1 RECOVERAFTER4 SEVERITYWARNING FAILAFTER12");
        assert_eq!(
            rule,
            AlertRule {
                severity: Severity::Warning,
                fail_after: 12,
                recover_after: 4
            }
        );
    }

    #[test]
    fn malformed_values_keep_defaults() {
        for text in [
            "FAILAFTER",
            "FAILAFTER0",
            "FAILAFTER-1",
            "FAILAFTERx",
            "FAILAFTER99999999999",
        ] {
            assert_eq!(
                AlertRule::from_requirement_text(text).fail_after,
                1,
                "{text}"
            );
        }
    }

    #[test]
    fn whole_lines_agree_with_the_requirement_parser() -> Result<(), dwmon_core::RequirementError> {
        for line in [
            "CHECKHOURS0-23 CHECKMINUTES0-59 WEEKDAYS MINNUM1 MAXNUM9 LOOKBACKSECONDS60",
            "CHECKHOURS0-23 CHECKMINUTES0-59 WEEKDAYS MINNUM1 MAXNUM9 LOOKBACKSECONDS60 SEVERITYWARNING",
            "CHECKHOURS9-9 CHECKMINUTES*/20 WEEKDAYS MINNUM5 MAXNUM20 LOOKBACKSECONDS180 FAILAFTER3 RECOVERAFTER2",
            "SEVERITYCRITICAL FAILAFTER10000 CHECKHOURS0 CHECKMINUTES0 WEEKENDS MINNUM0 MAXNUM0 LOOKBACKSECONDS1",
        ] {
            let parsed = dwmon_core::Requirement::parse(line)?;
            let expected = AlertRule {
                severity: parsed.severity,
                fail_after: parsed.fail_after,
                recover_after: parsed.recover_after,
            };
            assert_eq!(AlertRule::from_requirement_text(line), expected, "{line}");
            assert_eq!(
                AlertRule::from_requirement_text(&parsed.canonical()),
                expected,
                "{line}"
            );
        }
        Ok(())
    }

    #[test]
    fn zero_thresholds_act_as_one() {
        let rule = AlertRule {
            fail_after: 0,
            recover_after: 0,
            ..AlertRule::default()
        };
        assert_eq!((rule.fail_threshold(), rule.recover_threshold()), (1, 1));
    }
}
