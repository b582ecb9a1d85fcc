use autocandle_core::AutoRegister;

#[derive(AutoRegister)]
#[auto(config, model_type = "bert")]
union BertConfig {
    hidden_size: u32,
    vocab_size: u32,
}

fn main() {}
