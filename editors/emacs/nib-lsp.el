;;; nib-lsp.el --- Completions and review from nib beside your own server -*- lexical-binding: t; -*-

;; Copyright (C) 2026 The nib developers

;; Author: The nib developers
;; Maintainer: The nib developers
;; Version: 0.1.0
;; Package-Requires: ((emacs "27.1") (lsp-mode "8.0.0"))
;; Keywords: tools, languages, convenience
;; URL: https://github.com/nib-dev/nib
;; SPDX-License-Identifier: MIT OR Apache-2.0

;; This file is not part of GNU Emacs.

;;; Commentary:

;; nib is a local code assistant: a Transformer running in ONNX Runtime
;; behind a language server (`nib serve').  This package registers it with
;; lsp-mode as an add-on server: it runs beside the server lsp-mode already
;; starts for the buffer (pyright, pylsp, rust-analyzer...), which keeps
;; doing everything it did.  nib adds review findings (lsp-mode's
;; diagnostics, with quick fixes in `lsp-execute-code-action') and
;; completions:
;;
;;   (require 'nib-lsp)            ; or use-package with :after lsp-mode
;;   ;; ghost text, with lsp-mode 9.0 or later:
;;   (add-hook 'lsp-mode-hook #'lsp-inline-completion-mode)
;;
;; `nib-lsp-modes' lists the major modes nib joins.

;;; Code:

(require 'lsp-mode)

(defgroup nib-lsp nil
  "Code completion and review from nib, through lsp-mode."
  :group 'lsp-mode
  :prefix "nib-lsp-")

(defcustom nib-lsp-program "nib"
  "The nib binary: a name on `exec-path' or an absolute path."
  :type 'string)

(defcustom nib-lsp-model nil
  "Model folder; nil lets nib choose ($NIB_MODEL, then its own model)."
  :type '(choice (const nil) directory))

(defcustom nib-lsp-device "auto"
  "Execution provider: auto, cpu, cuda or cuda:N."
  :type 'string)

(defcustom nib-lsp-review-min-confidence nil
  "Hide review findings the model is less sure of than this (0 to 1).
nil keeps each rule's calibrated threshold (or the project's nib.toml)."
  :type '(choice (const :tag "nib's default" nil) number))

(defcustom nib-lsp-modes
  '(python-mode python-ts-mode rust-mode rust-ts-mode rustic-mode
    js-mode js-ts-mode js2-mode rjsx-mode typescript-mode typescript-ts-mode tsx-ts-mode
    go-mode go-ts-mode c-mode c-ts-mode c++-mode c++-ts-mode java-mode java-ts-mode
    kotlin-mode kotlin-ts-mode csharp-mode csharp-ts-mode swift-mode)
  "Major modes in which nib runs beside the buffer's own server.
The languages nib reviews; it completes in others too (add their modes)."
  :type '(repeat symbol))

(defun nib-lsp--initialization-options ()
  "nib's settings, as the server reads them."
  `(:nib (:model ,(and nib-lsp-model (expand-file-name nib-lsp-model))
          :device ,nib-lsp-device
          :review (:enable t
                   ,@(and nib-lsp-review-min-confidence
                          (list :minConfidence nib-lsp-review-min-confidence))))))

(lsp-register-client
 (make-lsp-client
  :new-connection (lsp-stdio-connection (lambda () (list nib-lsp-program "serve" "--stdio")))
  :activation-fn (lambda (_file mode) (memq mode nib-lsp-modes))
  ;; An add-on starts beside the buffer's main server instead of competing with it.
  :add-on? t
  :priority -1
  :server-id 'nib
  :initialization-options #'nib-lsp--initialization-options))

(defun nib-lsp--workspace ()
  "nib's workspace in this buffer, or a user error."
  (or (seq-find (lambda (w) (eq (lsp--client-server-id (lsp--workspace-client w)) 'nib))
                (lsp-workspaces))
      (user-error "nib: not running in this buffer")))

(defun nib-lsp-review-file ()
  "Ask nib to review the current file; findings arrive as diagnostics."
  (interactive)
  (with-lsp-workspace (nib-lsp--workspace)
    (lsp-request "workspace/executeCommand"
                 `(:command "nib.reviewFile" :arguments [,(lsp--buffer-uri)]))))

(provide 'nib-lsp)
;;; nib-lsp.el ends here
