//! [`GgufValue`]: one typed metadata value of a GGUF header.

/// A metadata value, as GGUF stores it (`gguf_metadata_value_type`).
#[derive(Debug, Clone, PartialEq)]
pub enum GgufValue {
    /// Type 0.
    U8(u8),
    /// Type 1.
    I8(i8),
    /// Type 2.
    U16(u16),
    /// Type 3.
    I16(i16),
    /// Type 4.
    U32(u32),
    /// Type 5.
    I32(i32),
    /// Type 6.
    F32(f32),
    /// Type 7.
    Bool(bool),
    /// Type 8: UTF-8 text.
    String(String),
    /// Type 9: values of one type.
    Array(Vec<GgufValue>),
    /// Type 10.
    U64(u64),
    /// Type 11.
    I64(i64),
    /// Type 12.
    F64(f64),
}

impl GgufValue {
    /// The GGUF name of the value's type (`uint32`, `string`, `array`, ...), for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::U8(_) => "uint8",
            Self::I8(_) => "int8",
            Self::U16(_) => "uint16",
            Self::I16(_) => "int16",
            Self::U32(_) => "uint32",
            Self::I32(_) => "int32",
            Self::F32(_) => "float32",
            Self::Bool(_) => "bool",
            Self::String(_) => "string",
            Self::Array(_) => "array",
            Self::U64(_) => "uint64",
            Self::I64(_) => "int64",
            Self::F64(_) => "float64",
        }
    }

    /// An integer of any width and sign, as `i128` (`None` for other types).
    pub fn as_int(&self) -> Option<i128> {
        Some(match *self {
            Self::U8(v) => v.into(),
            Self::I8(v) => v.into(),
            Self::U16(v) => v.into(),
            Self::I16(v) => v.into(),
            Self::U32(v) => v.into(),
            Self::I32(v) => v.into(),
            Self::U64(v) => v.into(),
            Self::I64(v) => v.into(),
            _ => return None,
        })
    }

    /// A non-negative integer that fits `usize`.
    pub fn as_usize(&self) -> Option<usize> {
        self.as_int().and_then(|v| usize::try_from(v).ok())
    }

    /// A number (integer or float) as `f64`.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Self::F32(v) => Some(v.into()),
            Self::F64(v) => Some(v),
            _ => self.as_int().map(|v| v as f64),
        }
    }

    /// A boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Self::Bool(v) => Some(v),
            _ => None,
        }
    }

    /// A string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    /// An array.
    pub fn as_array(&self) -> Option<&[GgufValue]> {
        match self {
            Self::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The value as JSON (arrays element by element), as `transformers` reads it into a config.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Self::F32(v) => serde_json::Number::from_f64(f64::from(*v)).map_or(Value::Null, Value::Number),
            Self::F64(v) => serde_json::Number::from_f64(*v).map_or(Value::Null, Value::Number),
            Self::Bool(v) => Value::Bool(*v),
            Self::String(s) => Value::String(s.clone()),
            Self::Array(a) => Value::Array(a.iter().map(Self::to_json).collect()),
            Self::U64(v) => Value::from(*v),
            Self::I64(v) => Value::from(*v),
            other => other.as_int().and_then(|v| i64::try_from(v).ok()).map_or(Value::Null, Value::from),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::GgufValue;

    #[test]
    fn numbers_convert_across_widths() {
        assert_eq!(GgufValue::U32(7).as_usize(), Some(7));
        assert_eq!(GgufValue::I32(-1).as_usize(), None);
        assert_eq!(GgufValue::I64(-1).as_int(), Some(-1));
        assert_eq!(GgufValue::F32(0.5).as_f64(), Some(0.5));
        assert_eq!(GgufValue::String("x".into()).as_f64(), None);
        assert_eq!(GgufValue::Array(vec![GgufValue::U8(1)]).to_json(), serde_json::json!([1]));
        assert_eq!(GgufValue::F32(f32::NAN).to_json(), serde_json::Value::Null);
    }
}
