public enum OCIPlaceholder {}
