use autocandle_core::AutoRegister;

#[derive(Debug, serde::Serialize, serde::Deserialize, AutoRegister)]
struct BertConfig {
    hidden_size: usize,
}

fn main() {}
