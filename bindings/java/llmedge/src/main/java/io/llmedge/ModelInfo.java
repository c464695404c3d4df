package io.llmedge;

/** What a model is, read from its GGUF metadata. */
public final class ModelInfo {
    private final String path;
    private final String architecture;
    private final String name;
    private final long parameterCount;
    private final long sizeBytes;
    private final int trainingContextSize;
    private final int embeddingSize;
    private final int layerCount;
    private final int vocabularySize;
    private final String quantization;
    private final String chatTemplate;
    private final String sha256;

    /** Built by the native library. */
    ModelInfo(String path, String architecture, String name, long parameterCount, long sizeBytes,
            int trainingContextSize, int embeddingSize, int layerCount, int vocabularySize, String quantization,
            String chatTemplate, String sha256) {
        this.path = path;
        this.architecture = architecture;
        this.name = name;
        this.parameterCount = parameterCount;
        this.sizeBytes = sizeBytes;
        this.trainingContextSize = trainingContextSize;
        this.embeddingSize = embeddingSize;
        this.layerCount = layerCount;
        this.vocabularySize = vocabularySize;
        this.quantization = quantization;
        this.chatTemplate = chatTemplate;
        this.sha256 = sha256;
    }

    public String getPath() {
        return path;
    }

    /** {@code general.architecture}, e.g. {@code llama}. */
    public String getArchitecture() {
        return architecture;
    }

    /** {@code general.name}, or null. */
    public String getName() {
        return name;
    }

    public long getParameterCount() {
        return parameterCount;
    }

    /** Size of the tensors in bytes. */
    public long getSizeBytes() {
        return sizeBytes;
    }

    public int getTrainingContextSize() {
        return trainingContextSize;
    }

    public int getEmbeddingSize() {
        return embeddingSize;
    }

    public int getLayerCount() {
        return layerCount;
    }

    public int getVocabularySize() {
        return vocabularySize;
    }

    /** The file's quantization, e.g. {@code Q4_1}. */
    public String getQuantization() {
        return quantization;
    }

    /** The Jinja chat template embedded in the file, or null. */
    public String getChatTemplate() {
        return chatTemplate;
    }

    /** SHA-256 of the file when loaded with {@link ModelOptions.Builder#computeSha256}, else null. */
    public String getSha256() {
        return sha256;
    }

    @Override
    public String toString() {
        return "ModelInfo{architecture=" + architecture + ", name=" + name + ", params=" + parameterCount
                + ", quantization=" + quantization + ", nCtxTrain=" + trainingContextSize + ", nVocab="
                + vocabularySize + ", path=" + path + "}";
    }
}
