use autocandle_core::AutoRegister;

#[derive(Debug, serde::Serialize, serde::Deserialize, AutoRegister)]
#[auto(config)]
struct BertConfig {
    hidden_size: usize,
}

#[derive(AutoRegister)]
#[auto()]
struct BertModel;

fn main() {}
