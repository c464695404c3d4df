//! `llmedge chat`: an interactive conversation that keeps its history.

use std::io::{BufRead, Write};

use llmedge::{ChatMessage, Error};

use crate::{ModelArgs, SamplingArgs};

/// Read user turns from stdin until EOF or `/exit`; `/reset` forgets the conversation.
pub fn repl(
    model: &ModelArgs,
    sampling: &SamplingArgs,
    system: Option<&str>,
    json: bool,
) -> Result<(), Error> {
    let (_model, mut session) = model.open(json)?;
    let options = sampling.options()?;
    let initial: Vec<ChatMessage> = system.map(ChatMessage::system).into_iter().collect();
    let mut history = initial.clone();
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    loop {
        if !json {
            print!("> ");
            let _ = stdout.flush();
        }
        let mut line = String::new();
        if stdin
            .lock()
            .read_line(&mut line)
            .map_err(|e| Error::InvalidArgument(e.to_string()))?
            == 0
        {
            break;
        }
        let line = line.trim_end_matches(['\n', '\r']);
        match line.trim() {
            "" => continue,
            "/exit" | "/quit" => break,
            "/reset" => {
                history = initial.clone();
                continue;
            }
            _ => {}
        }
        history.push(ChatMessage::user(line));
        let completion = session.chat_with(&history, &options, |piece| {
            if !json {
                print!("{piece}");
                let _ = std::io::stdout().flush();
            }
            true
        })?;
        if json {
            println!(
                "{}",
                serde_json::json!({"role": "assistant", "content": completion.text,
                    "finish_reason": completion.finish_reason, "usage": completion.usage})
            );
        } else {
            println!();
        }
        history.push(ChatMessage::assistant(completion.text));
    }
    Ok(())
}
