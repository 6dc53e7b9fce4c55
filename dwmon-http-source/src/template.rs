//! `${VAR}` templates: text in a request spec whose variables are read from the environment at
//! fetch time, and the [`Redactor`] that keeps their values out of messages.

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Variable(String),
}

/// Text with `${NAME}` placeholders (`NAME` is `[A-Za-z_][A-Za-z0-9_]*`). `$${` is a literal
/// `${`; any other `$` is literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    parts: Vec<Part>,
}

/// Why a template's text is not valid; `column` is 1-based in characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TemplateError {
    pub(crate) column: usize,
    pub(crate) message: String,
}

/// A variable the environment does not give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MissingVariable {
    pub(crate) name: String,
    pub(crate) empty: bool,
}

impl Template {
    /// Parses `text`, whose first character is at character column `first_column`.
    pub(crate) fn parse(text: &str, first_column: usize) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let chars: Vec<char> = text.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '$' && chars.get(i + 1) == Some(&'$') && chars.get(i + 2) == Some(&'{') {
                literal.push_str("${");
                i += 3;
                continue;
            }
            if c == '$' && chars.get(i + 1) == Some(&'{') {
                let start = i + 2;
                let Some(length) = chars[start..].iter().position(|&c| c == '}') else {
                    return Err(TemplateError {
                        column: first_column + i,
                        message: "`${` without a closing `}`; write `${NAME}` (or `$${` for a \
                                  literal `${`)"
                            .to_string(),
                    });
                };
                let name: String = chars[start..start + length].iter().collect();
                if !is_variable_name(&name) {
                    return Err(TemplateError {
                        column: first_column + i,
                        message: format!(
                            "`${{{}}}` is not a variable name; use letters, digits and `_`, not \
                             starting with a digit",
                            crate::escape(&name)
                        ),
                    });
                }
                if !literal.is_empty() {
                    parts.push(Part::Literal(std::mem::take(&mut literal)));
                }
                parts.push(Part::Variable(name));
                i = start + length + 1;
                continue;
            }
            literal.push(c);
            i += 1;
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Template { parts })
    }

    /// The text with every variable replaced by `lookup(NAME)`; each value is remembered by
    /// `redactor`.
    pub(crate) fn expand(
        &self,
        lookup: &dyn Fn(&str) -> Option<String>,
        redactor: &mut Redactor,
    ) -> Result<String, MissingVariable> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Variable(name) => match lookup(name) {
                    Some(value) if !value.is_empty() => {
                        redactor.add(name, &value);
                        out.push_str(&value);
                    }
                    other => {
                        return Err(MissingVariable {
                            name: name.clone(),
                            empty: other.is_some(),
                        })
                    }
                },
            }
        }
        Ok(out)
    }

    /// The text as written, placeholders included (safe to show).
    pub(crate) fn as_written(&self) -> String {
        self.parts
            .iter()
            .map(|part| match part {
                Part::Literal(text) => text.replace("${", "$${"),
                Part::Variable(name) => format!("${{{name}}}"),
            })
            .collect()
    }
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Replaces the values of expanded variables with `${NAME}` in text shown to people (error
/// messages), so a token read from the environment never reaches a log or an alert.
#[derive(Debug, Clone, Default)]
pub(crate) struct Redactor {
    /// `(value, name)`, longest value first so a value containing another is replaced whole.
    values: Vec<(String, String)>,
}

impl Redactor {
    fn add(&mut self, name: &str, value: &str) {
        if self.values.iter().any(|(known, _)| known == value) {
            return;
        }
        self.values.push((value.to_string(), name.to_string()));
        self.values
            .sort_by_key(|(value, _)| std::cmp::Reverse(value.len()));
    }

    /// `text` with every remembered value replaced by its `${NAME}`.
    pub(crate) fn redact(&self, text: &str) -> String {
        let mut text = text.to_string();
        for (value, name) in &self.values {
            if text.contains(value.as_str()) {
                text = text.replace(value.as_str(), &format!("${{{name}}}"));
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("s3cret".into()),
            "EMPTY" => Some(String::new()),
            "_X1" => Some("x".into()),
            _ => None,
        }
    }

    #[test]
    fn variables_expand_and_are_redacted() {
        let template = Template::parse("Bearer ${TOKEN} ${_X1}$x $${TOKEN}", 1).unwrap();
        let mut redactor = Redactor::default();
        let text = template.expand(&env, &mut redactor).unwrap();
        assert_eq!(text, "Bearer s3cret x$x ${TOKEN}");
        assert_eq!(
            redactor.redact("401 for s3cret"),
            "401 for ${TOKEN}".to_string()
        );
        assert_eq!(template.as_written(), "Bearer ${TOKEN} ${_X1}$x $${TOKEN}");
    }

    #[test]
    fn unset_and_empty_variables_are_named() {
        let mut redactor = Redactor::default();
        let unset = Template::parse("${NOPE}", 1).unwrap();
        assert_eq!(
            unset.expand(&env, &mut redactor),
            Err(MissingVariable {
                name: "NOPE".into(),
                empty: false
            })
        );
        let empty = Template::parse("a${EMPTY}", 1).unwrap();
        assert!(empty.expand(&env, &mut redactor).unwrap_err().empty);
    }

    #[test]
    fn bad_placeholders_say_where() {
        let error = Template::parse("ab${TOKEN", 5).unwrap_err();
        assert_eq!(error.column, 7);
        assert!(error.message.contains("closing"), "{}", error.message);
        let error = Template::parse("${1X}", 1).unwrap_err();
        assert_eq!(error.column, 1);
        assert!(error.message.contains("`${1X}`"), "{}", error.message);
        assert!(Template::parse("${}", 1).is_err());
    }
}
