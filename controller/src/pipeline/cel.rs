//! CEL `when` expressions (`when: [{cel: "'$(params.env)' == 'prod'"}]`):
//! the part of the Common Expression Language that pipeline conditions use,
//! evaluated after `$(...)` substitution, as Tekton does.
//!
//! Taken: string, integer, boolean and list literals; `==`, `!=`, `<`,
//! `<=`, `>`, `>=`, `in`; `&&`, `||`, `!`; `+` and `-` on integers, `+` on
//! strings and lists; `? :`; parentheses; `size(x)` / `x.size()`,
//! `x.startsWith(s)`, `x.endsWith(s)`, `x.contains(s)`, `int(s)`,
//! `string(x)`. Anything else is an error naming the column, never a guess.
//!
//! A tenant writes the expression, so it is bounded: at most
//! `MAX_EXPRESSION_BYTES` long and `MAX_DEPTH` levels deep (the parser is
//! recursive); values can only shrink or add up linearly in its length.

use std::cmp::Ordering;

/// Longest expression evaluated.
pub const MAX_EXPRESSION_BYTES: usize = 4096;

/// Deepest nesting of sub-expressions.
const MAX_DEPTH: usize = 32;

/// A CEL value.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Bool(bool),
    Int(i64),
    Str(String),
    List(Vec<Value>),
}

impl Value {
    fn type_name(&self) -> &'static str {
        match self {
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Str(_) => "string",
            Value::List(_) => "list",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Str(String),
    Int(i64),
    Ident(String),
    /// An operator or punctuation: `==`, `&&`, `(`, `.` ...
    Symbol(&'static str),
}

/// Evaluates `expression` (already substituted) to a boolean; the error
/// says what is wrong and where.
pub fn evaluate(expression: &str) -> Result<bool, String> {
    if expression.len() > MAX_EXPRESSION_BYTES {
        return Err(format!(
            "the expression is {} bytes, at most {MAX_EXPRESSION_BYTES} are evaluated",
            expression.len()
        ));
    }
    let tokens = tokenize(expression)?;
    let mut parser = Parser {
        tokens,
        at: 0,
        depth: 0,
    };
    let value = parser.conditional()?;
    if let Some((_, column)) = parser.tokens.get(parser.at) {
        return Err(format!("unexpected text at column {column}"));
    }
    match value {
        Value::Bool(holds) => Ok(holds),
        other => Err(format!("the expression gives a {}, not a bool", other.type_name())),
    }
}

const SYMBOLS: [&str; 22] = [
    "==", "!=", "<=", ">=", "&&", "||", "<", ">", "!", "+", "-", "(", ")", "[", "]", ",", ".", "?", ":", "*", "/", "%",
];

/// The tokens with their (1-based) columns.
fn tokenize(text: &str) -> Result<Vec<(Token, usize)>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' || c == '"' {
            let (literal, next) = string_literal(&chars, i)?;
            tokens.push((Token::Str(literal), column));
            i = next;
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            let digits: String = chars[start..i].iter().collect();
            let number = digits
                .parse()
                .map_err(|_| format!("the number at column {column} is too large"))?;
            tokens.push((Token::Int(number), column));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push((Token::Ident(chars[start..i].iter().collect()), column));
        } else {
            let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let symbol = SYMBOLS
                .iter()
                .find(|symbol| rest.starts_with(**symbol))
                .ok_or_else(|| format!("unexpected character {c:?} at column {column}"))?;
            tokens.push((Token::Symbol(symbol), column));
            i += symbol.len();
        }
    }
    Ok(tokens)
}

/// A quoted string from `start` (its quote) with `\\`, `\'`, `\"`, `\n`,
/// `\t` escapes; the string and where it ends.
fn string_literal(chars: &[char], start: usize) -> Result<(String, usize), String> {
    let quote = chars[start];
    let mut out = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            c if c == quote => return Ok((out, i + 1)),
            '\\' => {
                let escaped = chars.get(i + 1).ok_or("a string ends in a lone backslash")?;
                out.push(match escaped {
                    'n' => '\n',
                    't' => '\t',
                    '\\' | '\'' | '"' => *escaped,
                    other => return Err(format!("unknown escape \\{other} at column {}", i + 1)),
                });
                i += 2;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Err(format!("the string starting at column {} is not closed", start + 1))
}

struct Parser {
    tokens: Vec<(Token, usize)>,
    at: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).map(|(token, _)| token)
    }

    fn column(&self) -> String {
        self.tokens
            .get(self.at)
            .map_or("the end".to_string(), |(_, column)| format!("column {column}"))
    }

    fn eat(&mut self, symbol: &str) -> bool {
        let found = matches!(self.peek(), Some(Token::Symbol(s)) if *s == symbol);
        if found {
            self.at += 1;
        }
        found
    }

    fn expect(&mut self, symbol: &str) -> Result<(), String> {
        if self.eat(symbol) {
            Ok(())
        } else {
            Err(format!("expected {symbol:?} at {}", self.column()))
        }
    }

    /// `a ? b : c`, lowest precedence.
    fn conditional(&mut self) -> Result<Value, String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!("the expression nests deeper than {MAX_DEPTH} levels"));
        }
        let condition = self.or()?;
        let value = if self.eat("?") {
            let then = self.conditional()?;
            self.expect(":")?;
            let otherwise = self.conditional()?;
            match condition {
                Value::Bool(true) => then,
                Value::Bool(false) => otherwise,
                other => return Err(format!("`?` needs a bool condition, not a {}", other.type_name())),
            }
        } else {
            condition
        };
        self.depth -= 1;
        Ok(value)
    }

    fn or(&mut self) -> Result<Value, String> {
        let mut left = self.and()?;
        while self.eat("||") {
            let right = self.and()?;
            left = Value::Bool(truth(&left, "||")? || truth(&right, "||")?);
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Value, String> {
        let mut left = self.comparison()?;
        while self.eat("&&") {
            let right = self.comparison()?;
            left = Value::Bool(truth(&left, "&&")? && truth(&right, "&&")?);
        }
        Ok(left)
    }

    fn comparison(&mut self) -> Result<Value, String> {
        let left = self.additive()?;
        let operator = match self.peek() {
            Some(Token::Symbol(s)) if ["==", "!=", "<", "<=", ">", ">="].contains(s) => *s,
            Some(Token::Ident(word)) if word == "in" => "in",
            _ => return Ok(left),
        };
        self.at += 1;
        let right = self.additive()?;
        compare(operator, &left, &right).map(Value::Bool)
    }

    fn additive(&mut self) -> Result<Value, String> {
        let mut left = self.unary()?;
        loop {
            let operator = if self.eat("+") {
                "+"
            } else if self.eat("-") {
                "-"
            } else {
                return Ok(left);
            };
            let right = self.unary()?;
            left = arithmetic(operator, left, right)?;
        }
    }

    /// `!` and `-` prefixes, read in a loop (not by recursion: a run of a
    /// thousand `!` must not deepen the stack).
    fn unary(&mut self) -> Result<Value, String> {
        let mut prefixes = Vec::new();
        while let Some(prefix) = ["!", "-"].into_iter().find(|prefix| self.eat(prefix)) {
            prefixes.push(prefix);
        }
        let mut value = self.postfix()?;
        for prefix in prefixes.into_iter().rev() {
            value = match (prefix, value) {
                ("!", value) => Value::Bool(!truth(&value, "!")?),
                (_, Value::Int(n)) => Value::Int(n.checked_neg().ok_or("integer overflow")?),
                (_, other) => return Err(format!("`-` needs an int, not a {}", other.type_name())),
            };
        }
        Ok(value)
    }

    /// A primary followed by `.method(args)` calls.
    fn postfix(&mut self) -> Result<Value, String> {
        let mut value = self.primary()?;
        while self.eat(".") {
            let Some(Token::Ident(method)) = self.peek().cloned() else {
                return Err(format!("expected a method name at {}", self.column()));
            };
            self.at += 1;
            let args = self.arguments()?;
            value = call_method(&method, value, args)?;
        }
        Ok(value)
    }

    fn arguments(&mut self) -> Result<Vec<Value>, String> {
        self.expect("(")?;
        self.items_until(")")
    }

    /// Comma-separated expressions up to and including `close` (the
    /// opening bracket already read).
    fn items_until(&mut self, close: &str) -> Result<Vec<Value>, String> {
        let mut items = Vec::new();
        if self.eat(close) {
            return Ok(items);
        }
        loop {
            items.push(self.conditional()?);
            if self.eat(close) {
                return Ok(items);
            }
            self.expect(",")?;
        }
    }

    fn primary(&mut self) -> Result<Value, String> {
        let column = self.column();
        let Some(token) = self.peek().cloned() else {
            return Err("the expression ends too early".to_string());
        };
        self.at += 1;
        match token {
            Token::Str(text) => Ok(Value::Str(text)),
            Token::Int(number) => Ok(Value::Int(number)),
            Token::Ident(word) if word == "true" => Ok(Value::Bool(true)),
            Token::Ident(word) if word == "false" => Ok(Value::Bool(false)),
            Token::Ident(function) if matches!(self.peek(), Some(Token::Symbol("("))) => {
                let args = self.arguments()?;
                call_function(&function, args)
            }
            Token::Ident(word) => Err(format!(
                "unknown name {word:?} at {column} (a string needs quotes: '$(params.x)')"
            )),
            Token::Symbol("(") => {
                let value = self.conditional()?;
                self.expect(")")?;
                Ok(value)
            }
            Token::Symbol("[") => self.items_until("]").map(Value::List),
            Token::Symbol(symbol) => Err(format!("unexpected {symbol:?} at {column}")),
        }
    }
}

fn truth(value: &Value, operator: &str) -> Result<bool, String> {
    match value {
        Value::Bool(b) => Ok(*b),
        other => Err(format!("`{operator}` needs bools, not a {}", other.type_name())),
    }
}

fn compare(operator: &str, left: &Value, right: &Value) -> Result<bool, String> {
    if operator == "in" {
        return match right {
            Value::List(items) => Ok(items.contains(left)),
            other => Err(format!("`in` needs a list on its right, not a {}", other.type_name())),
        };
    }
    if std::mem::discriminant(left) != std::mem::discriminant(right) {
        return Err(format!(
            "`{operator}` compares a {} with a {} (CEL does not convert; use int() or string())",
            left.type_name(),
            right.type_name()
        ));
    }
    let order = match (left, right) {
        (Value::Int(a), Value::Int(b)) => Some(a.cmp(b)),
        (Value::Str(a), Value::Str(b)) => Some(a.cmp(b)),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        _ => None,
    };
    match operator {
        "==" => Ok(left == right),
        "!=" => Ok(left != right),
        _ => {
            let order = order.ok_or_else(|| format!("`{operator}` does not order lists"))?;
            Ok(match operator {
                "<" => order == Ordering::Less,
                "<=" => order != Ordering::Greater,
                ">" => order == Ordering::Greater,
                _ => order != Ordering::Less,
            })
        }
    }
}

fn arithmetic(operator: &str, left: Value, right: Value) -> Result<Value, String> {
    match (operator, left, right) {
        ("+", Value::Int(a), Value::Int(b)) => a.checked_add(b).map(Value::Int).ok_or("integer overflow".to_string()),
        ("-", Value::Int(a), Value::Int(b)) => a.checked_sub(b).map(Value::Int).ok_or("integer overflow".to_string()),
        ("+", Value::Str(a), Value::Str(b)) => Ok(Value::Str(a + &b)),
        ("+", Value::List(mut a), Value::List(b)) => {
            a.extend(b);
            Ok(Value::List(a))
        }
        (operator, left, right) => Err(format!(
            "`{operator}` cannot take a {} and a {}",
            left.type_name(),
            right.type_name()
        )),
    }
}

fn call_method(method: &str, target: Value, args: Vec<Value>) -> Result<Value, String> {
    match (method, &target, args.as_slice()) {
        ("startsWith", Value::Str(s), [Value::Str(prefix)]) => Ok(Value::Bool(s.starts_with(prefix.as_str()))),
        ("endsWith", Value::Str(s), [Value::Str(suffix)]) => Ok(Value::Bool(s.ends_with(suffix.as_str()))),
        ("contains", Value::Str(s), [Value::Str(part)]) => Ok(Value::Bool(s.contains(part.as_str()))),
        ("size", _, []) => call_function("size", vec![target]),
        _ => Err(format!(
            "no method {method}({}) on a {}",
            args.iter().map(Value::type_name).collect::<Vec<_>>().join(", "),
            target.type_name()
        )),
    }
}

fn call_function(function: &str, args: Vec<Value>) -> Result<Value, String> {
    match (function, args.as_slice()) {
        ("size", [Value::Str(s)]) => Ok(Value::Int(s.chars().count() as i64)),
        ("size", [Value::List(items)]) => Ok(Value::Int(items.len() as i64)),
        ("int", [Value::Int(n)]) => Ok(Value::Int(*n)),
        ("int", [Value::Str(s)]) => s
            .trim()
            .parse()
            .map(Value::Int)
            .map_err(|_| format!("int({s:?}): not an integer")),
        ("string", [Value::Str(s)]) => Ok(Value::Str(s.clone())),
        ("string", [Value::Int(n)]) => Ok(Value::Str(n.to_string())),
        ("string", [Value::Bool(b)]) => Ok(Value::Str(b.to_string())),
        _ => Err(format!(
            "no function {function}({})",
            args.iter().map(Value::type_name).collect::<Vec<_>>().join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons_logic_and_membership_evaluate_as_in_cel() {
        for (expression, expected) in [
            ("'main' == 'main'", true),
            ("'main' != 'main'", false),
            ("\"prod\" in ['staging', 'prod']", true),
            ("'dev' in ['staging', 'prod']", false),
            ("!('a' == 'b') && (1 < 2 || false)", true),
            ("int('42') >= 40 && int('42') - 2 == 40", true),
            (
                "'release-1.2'.startsWith('release-') && 'x.yaml'.endsWith('.yaml')",
                true,
            ),
            ("'feature/login'.contains('/')", true),
            ("size('abc') == 3 && ['a', 'b'].size() == 2", true),
            ("'b' > 'a' && 'a' <= 'a'", true),
            ("string(3) + 'x' == '3x'", true),
            ("1 + 1 == 2 ? true : false", true),
            ("[1] + [2] == [1, 2]", true),
            ("'it\\'s' == \"it's\"", true),
            ("-3 < 0", true),
        ] {
            assert_eq!(evaluate(expression), Ok(expected), "{expression}");
        }
    }

    #[test]
    fn errors_name_what_and_where() {
        for (expression, expected) in [
            ("'a' == 1", "compares a string with a int"),
            (
                "main == 'main'",
                "unknown name \"main\" at column 1 (a string needs quotes",
            ),
            ("'a' ==", "ends too early"),
            ("'a' == 'a' 'b'", "unexpected text at column 12"),
            ("'a' == 'a", "not closed"),
            ("'a' # 'b'", "unexpected character '#' at column 5"),
            ("'a'", "gives a string, not a bool"),
            ("'a'.matches('a')", "no method matches(string) on a string"),
            ("int('x') == 1", "int(\"x\"): not an integer"),
            ("1 && true", "`&&` needs bools, not a int"),
            ("'a' in 'abc'", "`in` needs a list"),
            ("9223372036854775807 + 1 == 0", "integer overflow"),
            ("['a' 'b'] == []", "expected \",\" at column 6"),
            ("size('a', 'b') == 1", "no function size(string, string)"),
            ("[1, 2", "expected \",\" at the end"),
        ] {
            let error = evaluate(expression).expect_err(expression);
            assert!(error.contains(expected), "{expression}: {error}");
        }
    }

    #[test]
    fn a_huge_or_deeply_nested_expression_is_refused_not_recursed_into() {
        let deep = format!("{}true{}", "(".repeat(1000), ")".repeat(1000));
        assert!(evaluate(&deep).expect_err("too deep").contains("deeper than 32"));
        assert_eq!(
            evaluate(&format!("{}true", "!".repeat(2000))),
            Ok(true),
            "an even run of `!`"
        );
        let long = format!("'{}' == ''", "a".repeat(5000));
        assert!(evaluate(&long).expect_err("too long").contains("at most 4096"));
    }
}
